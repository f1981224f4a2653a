import { ErrorCode, WalpurgeError } from '@walpurge/core';
import {
  UNCHANGED_TOAST,
  type PgoutputMessage,
  type RawTuple,
  type RelationColumn,
  type RelationMessage,
  type ReplicaIdentity,
} from './pgoutput-messages.js';

/** Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01. */
const POSTGRES_EPOCH_MICROS = 946_684_800_000_000n;

/** Sequential reader over one pgoutput message. */
class Reader {
  private offset = 0;
  constructor(private readonly buffer: Buffer) {}

  uint8(): number {
    this.need(1);
    return this.buffer.readUInt8(this.offset++);
  }
  int16(): number {
    this.need(2);
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  int32(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint32(): number {
    this.need(4);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint64(): bigint {
    this.need(8);
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
  /** Timestamps are int64 microseconds since 2000-01-01. */
  timestampMicros(): bigint {
    this.need(8);
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value + POSTGRES_EPOCH_MICROS;
  }
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw malformed('unterminated string');
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }
  bytes(length: number): Buffer {
    this.need(length);
    const slice = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }
  text(length: number): string {
    this.need(length);
    const text = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return text;
  }
  private need(length: number): void {
    // A negative length (a corrupt int32) would otherwise read backwards and invent a value.
    if (length < 0) throw malformed(`negative length ${length}`);
    if (this.offset + length > this.buffer.length) throw malformed('message ends early');
  }
}

function malformed(reason: string): WalpurgeError {
  return new WalpurgeError(ErrorCode.Replication, `malformed pgoutput message: ${reason}`, {
    retriable: false,
  });
}

const REPLICA_IDENTITY: Record<string, ReplicaIdentity> = {
  d: 'default',
  n: 'nothing',
  f: 'full',
  i: 'index',
};

/**
 * Decodes pgoutput protocol version 1 (text mode). Stateless: relation bookkeeping lives in the
 * change assembler, so a new session starts clean.
 */
export function decodePgoutput(buffer: Buffer): PgoutputMessage {
  const reader = new Reader(buffer);
  const tag = String.fromCharCode(reader.uint8());
  switch (tag) {
    case 'B':
      return {
        tag: 'begin',
        finalLsn: reader.uint64(),
        commitTimeMicros: reader.timestampMicros(),
        xid: reader.uint32(),
      };
    case 'C': {
      reader.uint8(); // flags, unused
      return {
        tag: 'commit',
        commitLsn: reader.uint64(),
        endLsn: reader.uint64(),
        commitTimeMicros: reader.timestampMicros(),
      };
    }
    case 'O':
      return { tag: 'origin', originLsn: reader.uint64(), name: reader.cstring() };
    case 'R':
      return readRelation(reader);
    case 'Y':
      return { tag: 'type', typeOid: reader.uint32(), schema: reader.cstring(), name: reader.cstring() };
    case 'I': {
      const relationOid = reader.uint32();
      expectByte(reader, 'N');
      return { tag: 'insert', relationOid, newTuple: readTuple(reader) };
    }
    case 'U': {
      const relationOid = reader.uint32();
      let keyTuple: RawTuple | null = null;
      let oldTuple: RawTuple | null = null;
      let marker = String.fromCharCode(reader.uint8());
      if (marker === 'K') keyTuple = readTuple(reader);
      else if (marker === 'O') oldTuple = readTuple(reader);
      if (marker !== 'N') marker = String.fromCharCode(reader.uint8());
      if (marker !== 'N') throw malformed(`update without new tuple (got '${marker}')`);
      return { tag: 'update', relationOid, keyTuple, oldTuple, newTuple: readTuple(reader) };
    }
    case 'D': {
      const relationOid = reader.uint32();
      const marker = String.fromCharCode(reader.uint8());
      if (marker !== 'K' && marker !== 'O') throw malformed(`delete with tuple marker '${marker}'`);
      const tuple = readTuple(reader);
      return {
        tag: 'delete',
        relationOid,
        keyTuple: marker === 'K' ? tuple : null,
        oldTuple: marker === 'O' ? tuple : null,
      };
    }
    case 'T': {
      const count = reader.uint32();
      const flags = reader.uint8();
      const relationOids: number[] = [];
      for (let i = 0; i < count; i += 1) relationOids.push(reader.uint32());
      return {
        tag: 'truncate',
        relationOids,
        cascade: (flags & 1) !== 0,
        restartIdentity: (flags & 2) !== 0,
      };
    }
    case 'M': {
      const flags = reader.uint8();
      const lsn = reader.uint64();
      const prefix = reader.cstring();
      const content = reader.bytes(reader.uint32());
      return { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix, content };
    }
    default:
      throw malformed(`unknown message type '${tag}' (only protocol version 1 is supported)`);
  }
}

function expectByte(reader: Reader, expected: string): void {
  const got = String.fromCharCode(reader.uint8());
  if (got !== expected) throw malformed(`expected '${expected}', got '${got}'`);
}

function readRelation(reader: Reader): RelationMessage {
  const relationOid = reader.uint32();
  const schema = reader.cstring();
  const table = reader.cstring();
  const identity = String.fromCharCode(reader.uint8());
  const replicaIdentity = REPLICA_IDENTITY[identity];
  if (!replicaIdentity) throw malformed(`unknown replica identity '${identity}'`);
  const count = reader.int16();
  const columns: RelationColumn[] = [];
  for (let i = 0; i < count; i += 1) {
    const flags = reader.uint8();
    columns.push({
      isKey: (flags & 1) !== 0,
      name: reader.cstring(),
      typeOid: reader.uint32(),
      typeMod: reader.int32(),
    });
  }
  return { tag: 'relation', relationOid, schema, table, replicaIdentity, columns };
}

function readTuple(reader: Reader): RawTuple {
  const count = reader.int16();
  const values: RawTuple = new Array<RawTuple[number]>(count);
  for (let i = 0; i < count; i += 1) {
    const kind = reader.uint8();
    switch (kind) {
      case 0x74: // 't' text
        values[i] = reader.text(reader.int32());
        break;
      case 0x6e: // 'n' SQL NULL
        values[i] = null;
        break;
      case 0x75: // 'u' unchanged TOAST datum: the value exists but was not sent
        values[i] = UNCHANGED_TOAST;
        break;
      case 0x62: // 'b' binary: only with the `binary` option, which we never request
        throw malformed('binary tuple data (the listener requests text mode)');
      default:
        throw malformed(`unknown tuple data kind ${kind}`);
    }
  }
  return values;
}
