#!/usr/bin/env node
// Checked-in shim so package managers can link the `walpurge` bin before `tsc -b` has built dist/.
import '../dist/main.js';
