/**
 * pgoutput protocol messages as the listener needs them: column values stay raw text so that type
 * conversion is ours (lossless, independent of the process-global `pg.types` registry), and an
 * unchanged TOAST datum is a distinct marker rather than `undefined` or `null`.
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */
export const UNCHANGED_TOAST: unique symbol = Symbol('unchanged-toast');
export type RawValue = string | null | typeof UNCHANGED_TOAST;
/** Values by column position, as listed in the relation message. */
export type RawTuple = RawValue[];

export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

export interface RelationColumn {
  name: string;
  /** Part of the replica identity (pgoutput flag 1; every column under REPLICA IDENTITY FULL). */
  isKey: boolean;
  typeOid: number;
  typeMod: number;
}

export interface RelationMessage {
  tag: 'relation';
  relationOid: number;
  schema: string;
  table: string;
  replicaIdentity: ReplicaIdentity;
  columns: RelationColumn[];
}

export interface BeginMessage {
  tag: 'begin';
  finalLsn: bigint;
  /** Microseconds since the Unix epoch. */
  commitTimeMicros: bigint;
  xid: number;
}

export interface CommitMessage {
  tag: 'commit';
  commitLsn: bigint;
  /** End of the commit record: the position to confirm once the transaction is durable. */
  endLsn: bigint;
  commitTimeMicros: bigint;
}

export interface OriginMessage {
  tag: 'origin';
  originLsn: bigint;
  name: string;
}

export interface TypeMessage {
  tag: 'type';
  typeOid: number;
  schema: string;
  name: string;
}

export interface InsertMessage {
  tag: 'insert';
  relationOid: number;
  newTuple: RawTuple;
}

export interface UpdateMessage {
  tag: 'update';
  relationOid: number;
  /** Old replica-identity columns, sent when they changed (DEFAULT / USING INDEX). */
  keyTuple: RawTuple | null;
  /** Whole old row (REPLICA IDENTITY FULL). */
  oldTuple: RawTuple | null;
  newTuple: RawTuple;
}

export interface DeleteMessage {
  tag: 'delete';
  relationOid: number;
  keyTuple: RawTuple | null;
  oldTuple: RawTuple | null;
}

export interface TruncateMessage {
  tag: 'truncate';
  relationOids: number[];
  cascade: boolean;
  restartIdentity: boolean;
}

export interface LogicalMessage {
  tag: 'message';
  transactional: boolean;
  lsn: bigint;
  prefix: string;
  content: Buffer;
}

export type PgoutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalMessage;
