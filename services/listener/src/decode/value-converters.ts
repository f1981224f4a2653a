import { parse as parseArray } from 'postgres-array';

/**
 * Text output of a column (as pgoutput sends it) → protocol v1 value (see
 * packages/protocol/src/change-event.ts). The replication connection runs with DateStyle=ISO,
 * TimeZone=UTC, IntervalStyle=iso_8601, bytea_output=hex and extra_float_digits=3, so the texts are
 * predictable and nothing below needs to guess a format.
 */
export type Converter = (text: string) => unknown;

/** Startup options of the replication connection that the converters rely on. */
export const REPLICATION_SESSION_OPTIONS =
  '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c bytea_output=hex -c extra_float_digits=3';

const identity: Converter = (text) => text;

const toInteger: Converter = (text) => Number(text);

/** JSON has no NaN/Infinity: those stay strings instead of silently becoming null. */
const toFloat: Converter = (text) => {
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
};

const toBoolean: Converter = (text) => text === 't' || text === 'true';

const toJson: Converter = (text) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
};

const ISO_TIMESTAMP =
  /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?$/;

/** "2026-11-22 14:00:00.123456+00" → "2026-11-22T14:00:00.123456Z" (microseconds kept). */
const toIsoTimestamp: Converter = (text) => {
  const match = ISO_TIMESTAMP.exec(text);
  if (!match) return text; // infinity, -infinity, BC dates: passed through as PostgreSQL wrote them
  const [, date, time, sign, hours, minutes, seconds] = match;
  if (sign === undefined) return `${date}T${time}`;
  if (seconds !== undefined) return text; // historical offsets with seconds have no ISO-8601 form
  const offset = `${sign}${hours}:${minutes ?? '00'}`;
  return `${date}T${time}${offset === '+00:00' || offset === '-00:00' ? 'Z' : offset}`;
};

/** Hex output is already the protocol's form; escape format (if forced by a server) is converted. */
const toByteaHex: Converter = (text) => {
  if (text.startsWith('\\x')) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] === '\\' && text[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else if (text[i] === '\\') {
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(text.charCodeAt(i));
  }
  return `\\x${Buffer.from(bytes).toString('hex')}`;
};

/** Built-in scalar types by OID (stable across PostgreSQL versions). Anything else is text. */
const SCALARS = new Map<number, Converter>([
  [16, toBoolean], // bool
  [17, toByteaHex], // bytea
  [20, identity], // int8: string, no precision loss
  [21, toInteger], // int2
  [23, toInteger], // int4
  [26, toInteger], // oid
  [114, toJson], // json
  [700, toFloat], // float4
  [701, toFloat], // float8
  [1082, identity], // date: already ISO with DateStyle=ISO
  [1114, toIsoTimestamp], // timestamp
  [1184, toIsoTimestamp], // timestamptz
  [1700, identity], // numeric: string
  [3802, toJson], // jsonb
]);

/** Built-in array types → element type, for when the catalog has not been read (unit tests). */
const BUILTIN_ARRAYS = new Map<number, number>([
  [1000, 16],
  [1001, 17],
  [1016, 20],
  [1005, 21],
  [1007, 23],
  [1028, 26],
  [199, 114],
  [1021, 700],
  [1022, 701],
  [1182, 1082],
  [1115, 1114],
  [1185, 1184],
  [1231, 1700],
  [3807, 3802],
  [1009, 25],
  [1015, 1043],
  [1014, 1042],
  [2951, 2950],
  [1183, 1083],
  [1270, 1266],
  [1187, 1186],
]);

/**
 * pg_catalog types by name. A pgoutput Type message for a domain carries the domain's OID but its
 * base type's name, with '' as schema for pg_catalog: this maps it back to the base type.
 */
const BUILTIN_BY_NAME = new Map<string, number>([
  ['bool', 16],
  ['bytea', 17],
  ['int8', 20],
  ['int2', 21],
  ['int4', 23],
  ['oid', 26],
  ['json', 114],
  ['float4', 700],
  ['float8', 701],
  ['date', 1082],
  ['timestamp', 1114],
  ['timestamptz', 1184],
  ['numeric', 1700],
  ['jsonb', 3802],
  ['_bool', 1000],
  ['_bytea', 1001],
  ['_int8', 1016],
  ['_int2', 1005],
  ['_int4', 1007],
  ['_oid', 1028],
  ['_json', 199],
  ['_float4', 1021],
  ['_float8', 1022],
  ['_date', 1182],
  ['_timestamp', 1115],
  ['_timestamptz', 1185],
  ['_numeric', 1231],
  ['_jsonb', 3807],
]);

export interface PgTypeRow {
  oid: number;
  name: string;
  /** pg_type.typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange. */
  type: string;
  /** pg_type.typcategory: 'A' for arrays. */
  category: string;
  elementOid: number;
  baseTypeOid: number;
  delimiter: string;
}

/**
 * Converter per type OID, from the database's own pg_type (arrays of any element type, domains over
 * built-ins, enums) plus pgoutput Type messages for types created while streaming.
 */
export class TypeConverters {
  private readonly types = new Map<number, PgTypeRow>();
  private readonly cache = new Map<number, Converter>();

  constructor(rows: readonly PgTypeRow[] = []) {
    for (const row of rows) this.types.set(row.oid, row);
  }

  /**
   * From a pgoutput Type message: a type created after the catalog was read. `schema` is '' for
   * pg_catalog, which for a user type's OID means a domain over that built-in type.
   */
  learn(typeOid: number, name: string, schema?: string): void {
    if (this.types.has(typeOid)) return;
    const builtin = schema === '' ? BUILTIN_BY_NAME.get(name) : undefined;
    if (builtin !== undefined) {
      this.types.set(typeOid, {
        oid: typeOid,
        name,
        type: 'd',
        category: 'U',
        elementOid: 0,
        baseTypeOid: builtin,
        delimiter: ',',
      });
      this.cache.delete(typeOid);
      return;
    }
    // Array types are named after their element with a leading underscore.
    const isArray = name.startsWith('_');
    this.types.set(typeOid, {
      oid: typeOid,
      name,
      type: 'b',
      category: isArray ? 'A' : 'S',
      elementOid: 0,
      baseTypeOid: 0,
      delimiter: ',',
    });
    this.cache.delete(typeOid);
  }

  converterFor(typeOid: number): Converter {
    let converter = this.cache.get(typeOid);
    if (!converter) {
      converter = this.build(typeOid, 0);
      this.cache.set(typeOid, converter);
    }
    return converter;
  }

  private build(typeOid: number, depth: number): Converter {
    const scalar = SCALARS.get(typeOid);
    if (scalar) return scalar;
    if (depth > 8) return identity;
    const row = this.types.get(typeOid);
    const builtinElement = BUILTIN_ARRAYS.get(typeOid);
    if (builtinElement !== undefined) return arrayOf(this.build(builtinElement, depth + 1));
    if (!row) return identity;
    if (row.type === 'd' && row.baseTypeOid) return this.build(row.baseTypeOid, depth + 1);
    if (row.category === 'A' && row.delimiter === ',') {
      return arrayOf(row.elementOid ? this.build(row.elementOid, depth + 1) : identity);
    }
    return identity;
  }
}

function arrayOf(element: Converter): Converter {
  return (text) => {
    try {
      // Explicit bounds ("[0:1]={1,2}") are skipped by the parser: the values are what matter.
      return parseArray(text, element);
    } catch {
      return text;
    }
  };
}
