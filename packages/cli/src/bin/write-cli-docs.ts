// Regenerates the `--help` part of docs/cli.md from the command specs:
//   pnpm exec tsx --conditions=@walpurge/source packages/cli/src/bin/write-cli-docs.ts
import { cliDocPath, writeCliReference } from '../docs/cli-reference.js';

await writeCliReference();
console.log(`wrote ${cliDocPath}`);
