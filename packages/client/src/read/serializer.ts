import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants as zlibConstants, gunzip, gzip } from 'node:zlib';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

/**
 * Turns values into bytes and back. The default is JSON: data only, never code, so a value written by
 * one service version can be read by any other without `eval`-style surprises.
 */
export interface Serializer<T = unknown> {
  serialize(value: T): string | Uint8Array;
  deserialize(data: Buffer): T;
}

export const jsonSerializer: Serializer = {
  serialize(value) {
    const text = JSON.stringify(value);
    // JSON.stringify(undefined) (and of functions/symbols) is undefined: refuse rather than store "".
    if (text === undefined) {
      throw new WalpurgeError(
        ErrorCode.Internal,
        'cannot cache undefined: return null from the loader for "not found"',
      );
    }
    return text;
  },
  deserialize(data) {
    return JSON.parse(data.toString('utf8')) as unknown;
  },
};

export type CompressionAlgorithm = 'gzip' | 'brotli';

export interface CompressionOptions {
  algorithm: CompressionAlgorithm;
  /** Payloads smaller than this many bytes are stored as they are (compressing them costs more than it saves). */
  thresholdBytes: number;
}

/**
 * First byte of every stored payload: how the rest is encoded. Reads honour the marker, not the
 * current settings, so turning compression on or off never breaks entries already in Redis.
 */
export const PayloadMarker = { Plain: 0x00, Gzip: 0x01, Brotli: 0x02 } as const;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
const brotliAsync = promisify(brotliCompress);
const unbrotliAsync = promisify(brotliDecompress);
// Quality 4 is the usual "fast" brotli level: most of the ratio at a fraction of the CPU of 11.
const brotliOptions = { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } };

export class PayloadCodec<T> {
  constructor(
    private readonly serializer: Serializer<T>,
    private readonly compression?: CompressionOptions,
  ) {}

  async encode(value: T): Promise<Buffer> {
    const serialized = this.serializer.serialize(value);
    const raw = typeof serialized === 'string' ? Buffer.from(serialized, 'utf8') : Buffer.from(serialized);
    const compression = this.compression;
    if (!compression || raw.length < compression.thresholdBytes) return withMarker(PayloadMarker.Plain, raw);
    if (compression.algorithm === 'gzip') return withMarker(PayloadMarker.Gzip, await gzipAsync(raw));
    return withMarker(PayloadMarker.Brotli, await brotliAsync(raw, brotliOptions));
  }

  async decode(payload: Buffer): Promise<T> {
    const marker = payload[0];
    const body = payload.subarray(1);
    switch (marker) {
      case PayloadMarker.Plain:
        return this.serializer.deserialize(body);
      case PayloadMarker.Gzip:
        return this.serializer.deserialize(await gunzipAsync(body));
      case PayloadMarker.Brotli:
        return this.serializer.deserialize(await unbrotliAsync(body));
      default:
        throw new WalpurgeError(
          ErrorCode.Internal,
          `cache entry has unknown payload marker ${String(marker)}`,
          {
            hint: 'another program wrote this key, or it was written by a newer @walpurge/client',
          },
        );
    }
  }
}

function withMarker(marker: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.of(marker), body]);
}
