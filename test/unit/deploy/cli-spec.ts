/**
 * The `walpurge` CLI's own option specs (imported from the CLI package, not copied): which roles
 * `run` accepts, which flags exist, which environment variables the CLI reads.
 */
import { parseArgs } from 'node:util';
import { commands } from 'walpurge';

type Command = (typeof commands)[number];

export function cliCommand(name: string): Command {
  const command = commands.find((candidate) => candidate.name === name);
  if (!command)
    throw new Error(
      `the walpurge CLI has no '${name}' command (has: ${commands.map((c) => c.name).join(', ')})`,
    );
  return command;
}

/** Values `walpurge run --role` accepts. */
export function runRoles(): readonly string[] {
  const choices = cliCommand('run').options['role']?.choices;
  if (!choices || choices.length === 0) throw new Error('walpurge run has no --role option with choices');
  return choices;
}

/**
 * The roles a split (Kafka) deployment runs apart: every `--role` but `all` (the embedded mode) and
 * `inspector`, the consistency observer, which is opt-in (an `inspect` section; docs/consistency.md).
 */
export function splitRoles(): readonly string[] {
  return runRoles().filter((role) => role !== 'all' && role !== 'inspector');
}

/** Every environment variable any CLI option falls back to (WALPURGE_CONFIG, LOG_LEVEL, …). */
export function cliEnvVars(): Set<string> {
  const names = new Set<string>();
  for (const command of commands) {
    for (const option of Object.values(command.options)) if (option.env) names.add(option.env);
  }
  return names;
}

export interface ParsedInvocation {
  command: string;
  options: Record<string, string | boolean | undefined>;
}

/**
 * Parses `run --config F --role R …` against the command's real option spec: unknown flags and
 * values outside an option's choices throw, as they would make the container exit with code 2.
 */
export function parseInvocation(argv: readonly string[]): ParsedInvocation {
  if (argv.length === 0) throw new Error('no command given to walpurge');
  // Commands may be two words (`slot drop`, `dlq list`): the longest name argv starts with.
  const name =
    commands
      .map((candidate) => candidate.name)
      .filter((candidate) => candidate.split(' ').every((word, index) => argv[index] === word))
      .sort((a, b) => b.length - a.length)[0] ?? (argv[0] as string);
  const rest = argv.slice(name.split(' ').length);
  const command = cliCommand(name);
  const { values, positionals } = parseArgs({
    args: rest,
    options: Object.fromEntries(
      Object.entries(command.options).map(([flag, option]) => [flag, { type: option.type }]),
    ),
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > (command.positionals?.length ?? 0))
    throw new Error(`unexpected arguments for walpurge ${name}: ${positionals.join(' ')}`);
  for (const [flag, option] of Object.entries(command.options)) {
    const value = values[flag];
    if (option.choices && typeof value === 'string' && !option.choices.includes(value)) {
      throw new Error(`walpurge ${name} --${flag} ${value}: not one of ${option.choices.join(', ')}`);
    }
  }
  return { command: name, options: values as Record<string, string | boolean | undefined> };
}
