import { loadConfig, type LoadedConfig } from '@walpurge/config';
import type { CliIo } from './cli-io.js';
import { stringOption, type OptionValues } from './command.js';

/** Loads --config (or WALPURGE_CONFIG, or ./walpurge.yaml) with ${VAR} substitution from the CLI's env. */
export function loadCliConfig(options: OptionValues, io: CliIo): Promise<LoadedConfig> {
  return loadConfig(stringOption(options, 'config') ?? 'walpurge.yaml', { env: io.env });
}
