export { runCli, commands, renderGlobalHelp } from './cli.js';
export { cliVersion } from './version.js';
export { ExitCode, UsageError, type CliIo, type TextOutput } from './cli-io.js';
export { shutdownDeadlineMs } from './commands/run.js';
export type { Role } from './run/roles.js';
