import type { Client } from 'pg';
import { decodePgoutput } from './pgoutput-decoder.js';
import type { PgoutputMessage } from './pgoutput-messages.js';

/** `parse` never throws: it runs inside pg's socket handler, where a throw would crash the process. */
export type DecodedMessage =
  | { message: PgoutputMessage; error?: undefined; bytes: number }
  | { message?: undefined; error: unknown; bytes: number };

/**
 * Output plugin for pg-logical-replication's `subscribe`. Same START_REPLICATION as the library's
 * PgoutputPlugin, but decoding is ours: the library's parser converts values through the
 * process-global `pg.types` parsers (timestamps lose microseconds, int8 depends on whoever configured
 * pg last) and cannot tell an unchanged TOAST column apart cleanly.
 * Structurally compatible with the library's AbstractPlugin (options, name, start, parse).
 */
export class WalpurgePgoutputPlugin {
  readonly options: { protoVersion: 1; publicationNames: string[] };

  constructor(publication: string) {
    this.options = { protoVersion: 1, publicationNames: [publication] };
  }

  get name(): string {
    return 'pgoutput';
  }

  parse(buffer: Buffer): DecodedMessage {
    try {
      return { message: decodePgoutput(buffer), bytes: buffer.length };
    } catch (error) {
      return { error, bytes: buffer.length };
    }
  }

  start(client: Client, slotName: string, lastLsn: string): Promise<unknown> {
    const publications = this.options.publicationNames
      .map((name) => `"${name.replace(/"/g, '""')}"`)
      .join(',');
    const sql =
      `START_REPLICATION SLOT "${slotName.replace(/"/g, '""')}" LOGICAL ${lastLsn} ` +
      `(proto_version '1', publication_names '${publications.replace(/'/g, "''")}')`;
    return client.query(sql);
  }
}
