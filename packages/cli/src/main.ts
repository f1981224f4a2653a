#!/usr/bin/env node
import { createInterface } from 'node:readline/promises';
import { runCli } from './cli.js';

const prompt = process.stdin.isTTY
  ? async (question: string): Promise<string> => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    }
  : undefined;

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  handleSignals: true,
  ...(prompt ? { prompt } : {}),
});
// exitCode + natural exit lets stdout drain (a pipe to `jq` must not be cut short); anything still
// holding the event loop after a finished command is a leak, so do not wait for it forever.
process.exitCode = code;
setTimeout(() => process.exit(code), 2_000).unref();
