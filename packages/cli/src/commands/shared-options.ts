import { UsageError } from '../cli-io.js';
import { stringOption, type OptionSpec, type OptionValues } from '../command.js';

export const logLevelOption: OptionSpec = {
  type: 'string',
  description: 'Log level (overrides log.level).',
  env: 'LOG_LEVEL',
  choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
  valueName: 'LEVEL',
};

export const httpPortOption: OptionSpec = {
  type: 'string',
  description: 'Port of /metrics, /healthz, /readyz (overrides http.port; 0 = any free port).',
  env: 'WALPURGE_HTTP_PORT',
  valueName: 'PORT',
};

export function parsePort(options: OptionValues, command: string): number | undefined {
  const text = stringOption(options, 'http-port');
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535)
    throw new UsageError(`--http-port must be a port number 0-65535 (got '${text}')`, command);
  return port;
}
