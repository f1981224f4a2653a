import { ExitCode, UsageError, writeLine, type CliIo } from './cli-io.js';
import { EXIT_CODES_HELP, parseCommandArgs, renderCommandHelp, type CommandSpec } from './command.js';
import { reportError } from './report-error.js';
import { runCommand } from './commands/run.js';
import { validateCommand } from './commands/validate.js';
import { explainCommand } from './commands/explain.js';
import { purgeCommand } from './commands/purge.js';
import { statusCommand } from './commands/status.js';
import { inspectCommand } from './commands/inspect.js';
import { dlqListCommand, dlqRedriveCommand } from './commands/dlq.js';
import { slotDropCommand, slotResetCommand } from './commands/slot.js';
import { quickstartCommand } from './commands/quickstart.js';
import { cliVersion } from './version.js';

export const commands: readonly CommandSpec[] = [
  quickstartCommand,
  runCommand,
  validateCommand,
  explainCommand,
  purgeCommand,
  statusCommand,
  inspectCommand,
  dlqListCommand,
  dlqRedriveCommand,
  slotDropCommand,
  slotResetCommand,
];

export function renderGlobalHelp(): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return [
    'walpurge: CDC-driven cache invalidation for PostgreSQL.',
    '',
    'Usage: walpurge <command> [options]',
    '',
    'Commands:',
    ...commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    "Run 'walpurge <command> --help' for a command's options. Every option can also be set by the",
    'environment variable shown in its help; flags win over the environment.',
    '',
    EXIT_CODES_HELP,
    '',
  ].join('\n');
}

function renderGroupHelp(group: string, members: readonly CommandSpec[]): string {
  const lines = [`Usage: walpurge ${group} <subcommand> [options]`, '', 'Subcommands:'];
  for (const member of members) lines.push(`  walpurge ${member.name.padEnd(16)} ${member.summary}`);
  lines.push('', `Run 'walpurge ${group} <subcommand> --help' for its options.`, '', EXIT_CODES_HELP, '');
  return lines.join('\n');
}

function findCommand(argv: string[]): { spec: CommandSpec; rest: string[] } | undefined {
  const [first, second] = argv;
  const two = commands.find((command) => command.name === `${first} ${second}`);
  if (two) return { spec: two, rest: argv.slice(2) };
  const one = commands.find((command) => command.name === first);
  if (one) return { spec: one, rest: argv.slice(1) };
  return undefined;
}

/** The whole CLI as a function: tests call it in-process, `main.ts` with the real process. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    const [first] = argv;
    if (first === undefined) {
      io.stderr.write(renderGlobalHelp());
      return ExitCode.Usage;
    }
    if (first === '--help' || first === '-h' || first === 'help') {
      const target = argv.length > 1 ? findCommand(argv.slice(1)) : undefined;
      io.stdout.write(target ? renderCommandHelp(target.spec) : renderGlobalHelp());
      return ExitCode.Ok;
    }
    if (first === '--version' || first === '-v') {
      writeLine(io.stdout, cliVersion());
      return ExitCode.Ok;
    }
    const found = findCommand(argv);
    if (!found) {
      const group = commands.filter((command) => command.name.startsWith(`${first} `));
      if (group.length > 0) {
        if (argv[1] === '--help' || argv[1] === '-h') {
          io.stdout.write(renderGroupHelp(first, group));
          return ExitCode.Ok;
        }
        const choices = group.map((command) => command.name.split(' ')[1]).join('|');
        throw new UsageError(
          argv[1]
            ? `unknown subcommand '${argv[1]}' (expected ${choices})`
            : `expected a subcommand: ${choices}`,
          first,
        );
      }
      throw new UsageError(`unknown command '${first}'`);
    }
    const parsed = parseCommandArgs(found.spec, found.rest, io.env);
    if (parsed.help) {
      io.stdout.write(renderCommandHelp(found.spec));
      return ExitCode.Ok;
    }
    return await found.spec.run({ io, options: parsed.options, positionals: parsed.positionals });
  } catch (error) {
    return reportError(error, io);
  }
}
