import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@walpurge/core';

export type LogLine = Record<string, unknown>;

/** A logger whose lines are kept, parsed (pino writes one JSON object per line), for assertions. */
export function capturingLogger(level: string): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}
