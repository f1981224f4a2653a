import { readFileSync } from 'node:fs';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

/**
 * A PEM file's text. A file gone at a reconnect fails with one non-retriable line naming the option
 * (never the path: the logger masks TLS file paths), not a bare fs error.
 */
export function readPemFile(path: string, what: 'certificate' | 'private key', option: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found' : (code ?? 'unreadable');
    throw new WalpurgeError(ErrorCode.ConfigInvalid, `${option}: cannot read the ${what} file (${reason})`, {
      cause: error,
    });
  }
}
