import { ConfigError } from '@walpurge/config';
import { WalpurgeError, redactSecrets } from '@walpurge/core';
import { ExitCode, UsageError, writeLine, type CliIo } from './cli-io.js';
import { asConnectionError } from './live/connection-errors.js';

/**
 * Turns any error into what a person should read: one clear message (and a hint), never a stack
 * trace, unless WALPURGE_DEBUG is set. Returns the exit code.
 */
export function reportError(thrown: unknown, io: CliIo): number {
  const error = asConnectionError(thrown) ?? thrown;
  const say = (text: string): void => writeLine(io.stderr, redactSecrets(text));
  if (error instanceof UsageError) {
    const prefix = error.command ? `walpurge ${error.command}` : 'walpurge';
    say(`${prefix}: ${error.message}`);
    say(`Run '${prefix} --help' for usage.`);
    return ExitCode.Usage;
  }
  if (error instanceof ConfigError) {
    say(error.message);
    if (error.hint) say(`hint: ${error.hint}`);
    return ExitCode.Failure;
  }
  if (error instanceof WalpurgeError) {
    say(`error ${error.code}: ${error.message}`);
    if (error.hint) say(`hint: ${error.hint}`);
    if (io.env['WALPURGE_DEBUG'] && error.stack) say(error.stack);
    return ExitCode.Failure;
  }
  const message = error instanceof Error ? error.message : String(error);
  say(`walpurge: unexpected error: ${message}`);
  if (io.env['WALPURGE_DEBUG'] && error instanceof Error && error.stack) say(error.stack);
  else say('(set WALPURGE_DEBUG=1 for the stack trace)');
  return ExitCode.Failure;
}
