import { loadConfig, parseConfigText, type LoadedConfig } from '@walpurge/config';
import { UsageError, type CliIo } from './cli-io.js';
import { stringOption, type OptionValues } from './command.js';

/** The environment variable that may hold the whole walpurge.yaml, for platforms without volumes. */
export const CONFIG_TEXT_VARIABLE = 'WALPURGE_CONFIG_YAML';

export interface CliConfigOptions {
  /** Sections the running role never reads; see SECTIONS_NOT_READ_BY. */
  unusedSections?: ReadonlySet<string>;
  /** 'skip': missing TLS files do not refuse the config (`validate` reports them, `explain` needs none). */
  tlsFiles?: 'check' | 'skip';
}

/**
 * Loads the YAML text of WALPURGE_CONFIG_YAML, else --config (or WALPURGE_CONFIG), else
 * ./walpurge.yaml, with ${VAR} substitution from the CLI's env.
 */
export function loadCliConfig(
  options: OptionValues,
  io: CliIo,
  { unusedSections, tlsFiles }: CliConfigOptions = {},
): Promise<LoadedConfig> {
  const parse = {
    env: io.env,
    ...(unusedSections ? { unusedSections } : {}),
    ...(tlsFiles ? { tlsFiles } : {}),
  };
  const file = stringOption(options, 'config');
  const text = io.env[CONFIG_TEXT_VARIABLE];
  if (text !== undefined && text.trim() !== '') {
    // The YAML text wins over a WALPURGE_CONFIG from the environment (the container image sets one
    // by default); only an explicit --config naming another file is a contradiction.
    if (file !== undefined && file !== io.env['WALPURGE_CONFIG'])
      throw new UsageError(
        `both --config and ${CONFIG_TEXT_VARIABLE} are set: give the configuration one way`,
      );
    return Promise.resolve().then(() => parseConfigText(text, `$${CONFIG_TEXT_VARIABLE}`, parse));
  }
  return loadConfig(file ?? 'walpurge.yaml', parse);
}
