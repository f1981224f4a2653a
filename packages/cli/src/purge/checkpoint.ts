import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { UsageError } from '../cli-io.js';

/**
 * Where an interrupted `walpurge purge --table` stopped: the key of the last row whose entries were
 * purged. Written (atomically: temp file + rename) after every finished batch, so even a kill -9
 * loses at most the batch in flight, which --resume purges again (purges are idempotent).
 */
export interface Checkpoint {
  version: 1;
  table: string;
  where: string | null;
  /** What the key is (primary key columns, or ctid), so a resume cannot mix them up. */
  keyKind: string;
  lastKey: string[];
  /** ctid keys: the table's file node when the key was recorded (a rewrite renumbers rows). */
  fileNode: string | null;
  rows: number;
  updatedAt: string;
}

function isCheckpoint(value: unknown): value is Checkpoint {
  if (typeof value !== 'object' || value === null) return false;
  const c = value as Record<string, unknown>;
  const text = (v: unknown): boolean => typeof v === 'string';
  return (
    c['version'] === 1 &&
    text(c['table']) &&
    (c['where'] === null || text(c['where'])) &&
    text(c['keyKind']) &&
    Array.isArray(c['lastKey']) &&
    c['lastKey'].every(text) &&
    (c['fileNode'] === null || text(c['fileNode'])) &&
    Number.isInteger(c['rows'])
  );
}

/** Default file: one per table in the working directory. */
export function defaultCheckpointFile(table: string): string {
  return `walpurge-purge.${table}.checkpoint.json`;
}

export async function writeCheckpoint(file: string, checkpoint: Checkpoint): Promise<void> {
  const temp = `${file}.tmp`;
  await writeFile(temp, `${JSON.stringify(checkpoint, null, 2)}\n`);
  await rename(temp, file);
}

export async function removeCheckpoint(file: string): Promise<void> {
  await rm(file, { force: true });
}

/** The checkpoint to resume from; refuses one written for another table or --where. */
export async function readCheckpoint(
  file: string,
  expected: { table: string; where: string | null },
): Promise<Checkpoint> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UsageError(
      missing
        ? `--resume: no checkpoint file ${file} (an interrupted purge writes it; pass --checkpoint FILE if it was elsewhere)`
        : `--resume: cannot read ${file}: ${(error as Error).message}`,
      'purge',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isCheckpoint(parsed))
    throw new UsageError(`--resume: ${file} is not a walpurge purge checkpoint`, 'purge');
  if (parsed.table !== expected.table || parsed.where !== expected.where) {
    const describe = (c: { table: string; where: string | null }): string =>
      `--table ${c.table}${c.where === null ? '' : ` --where ${JSON.stringify(c.where)}`}`;
    throw new UsageError(
      `--resume: ${file} was written by '${describe(parsed)}', not '${describe(expected)}'`,
      'purge',
    );
  }
  return parsed;
}
