export { runCli, commands, renderGlobalHelp, VERSION } from './cli.js';
export { ExitCode, UsageError, type CliIo, type TextOutput } from './cli-io.js';
export { shutdownDeadlineMs } from './commands/run.js';
