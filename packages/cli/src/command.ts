import { parseArgs } from 'node:util';
import { UsageError, type CliIo } from './cli-io.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  short?: string;
  /** Environment variable used when the flag is absent. */
  env?: string;
  default?: string | boolean;
  /** Allowed values of a string option. */
  choices?: readonly string[];
  /** Placeholder in help, e.g. FILE. */
  valueName?: string;
  required?: boolean;
}

export type OptionValues = Record<string, string | boolean | undefined>;

export interface CommandContext {
  io: CliIo;
  options: OptionValues;
  positionals: string[];
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Text after the options in --help: details, examples. */
  details?: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** Names of positional arguments accepted (for help and arity checks). */
  positionals?: { name: string; description: string; required?: boolean }[];
  run(context: CommandContext): Promise<number>;
}

const helpOption: OptionSpec = { type: 'boolean', short: 'h', description: 'Show this help.' };

function truthy(text: string): boolean {
  return /^(1|true|yes|on)$/i.test(text.trim());
}

/**
 * util.parseArgs plus what it lacks: environment-variable fallbacks, choices, required options,
 * and errors that say which command to ask for help.
 */
export function parseCommandArgs(
  spec: CommandSpec,
  argv: string[],
  env: CliIo['env'],
): { help: boolean; options: OptionValues; positionals: string[] } {
  const options = { ...spec.options, help: helpOption };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(options).map(([name, option]) => [
          name,
          { type: option.type, ...(option.short ? { short: option.short } : {}) },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // parseArgs' messages are good but mention "parseArgs"-isms; keep their first sentence.
    const message =
      error instanceof Error
        ? (error.message.split('. ')[0]?.replace(/\.$/, '') ?? error.message)
        : String(error);
    throw new UsageError(message, spec.name);
  }
  const values: OptionValues = { ...(parsed.values as OptionValues) };
  if (values['help'] === true) return { help: true, options: values, positionals: parsed.positionals };
  delete values['help'];

  for (const [name, option] of Object.entries(spec.options)) {
    if (values[name] === undefined && option.env) {
      const fromEnv = env[option.env];
      if (fromEnv !== undefined && fromEnv !== '')
        values[name] = option.type === 'boolean' ? truthy(fromEnv) : fromEnv;
    }
    if (values[name] === undefined && option.default !== undefined) values[name] = option.default;
    const value = values[name];
    if (option.choices && typeof value === 'string' && !option.choices.includes(value)) {
      throw new UsageError(
        `--${name} must be one of ${option.choices.join(', ')} (got '${value}')`,
        spec.name,
      );
    }
    if (option.required && (value === undefined || value === '')) {
      const viaEnv = option.env ? ` (or set ${option.env})` : '';
      throw new UsageError(`--${name} is required${viaEnv}`, spec.name);
    }
  }
  const allowed = spec.positionals ?? [];
  if (parsed.positionals.length > allowed.length) {
    throw new UsageError(`unexpected argument '${parsed.positionals[allowed.length]}'`, spec.name);
  }
  const missing = allowed.slice(parsed.positionals.length).find((positional) => positional.required);
  if (missing) throw new UsageError(`missing ${missing.name}`, spec.name);
  return { help: false, options: values, positionals: parsed.positionals };
}

export function renderCommandHelp(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage}`, '', spec.summary, ''];
  if (spec.positionals?.length) {
    lines.push('Arguments:');
    for (const positional of spec.positionals)
      lines.push(`  ${positional.name.padEnd(26)} ${positional.description}`);
    lines.push('');
  }
  lines.push('Options:');
  const entries = Object.entries({ ...spec.options, help: helpOption });
  for (const [name, option] of entries) {
    const flag = `${option.short ? `-${option.short}, ` : '    '}--${name}${option.type === 'string' ? ` ${option.valueName ?? 'VALUE'}` : ''}`;
    const extras: string[] = [];
    if (option.choices) extras.push(`one of: ${option.choices.join(', ')}`);
    if (option.default !== undefined) extras.push(`default: ${String(option.default)}`);
    if (option.env) extras.push(`env: ${option.env}`);
    const suffix = extras.length ? ` [${extras.join('; ')}]` : '';
    lines.push(`  ${flag.padEnd(28)} ${option.description}${suffix}`);
  }
  if (spec.details) lines.push('', spec.details.trimEnd());
  lines.push('', EXIT_CODES_HELP);
  return `${lines.join('\n')}\n`;
}

export const EXIT_CODES_HELP = 'Exit codes: 0 ok; 1 problems found or failure; 2 usage error.';

/** Options shared by every command that reads walpurge.yaml. */
export const configOption: OptionSpec = {
  type: 'string',
  short: 'c',
  description:
    'Path of walpurge.yaml (default: ./walpurge.yaml, unless WALPURGE_CONFIG_YAML holds the configuration itself).',
  env: 'WALPURGE_CONFIG',
  valueName: 'FILE',
};

export const jsonOption: OptionSpec = {
  type: 'boolean',
  description: 'Machine-readable JSON on stdout.',
  env: 'WALPURGE_JSON',
};

export function stringOption(options: OptionValues, name: string): string | undefined {
  const value = options[name];
  return typeof value === 'string' ? value : undefined;
}

export function requireString(options: OptionValues, name: string, command: string): string {
  const value = stringOption(options, name);
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`, command);
  return value;
}
