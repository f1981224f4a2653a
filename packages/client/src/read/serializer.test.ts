import { describe, expect, it } from 'vitest';
import { PayloadCodec, PayloadMarker, jsonSerializer, type Serializer } from './serializer.js';

const row = { id: 42, email: 'a@example.com', tags: ['x', 'y'], nested: { ok: true, n: null } };

describe('PayloadCodec', () => {
  it('round-trips JSON with a plain marker when compression is off', async () => {
    const codec = new PayloadCodec(jsonSerializer);
    const payload = await codec.encode(row);
    expect(payload[0]).toBe(PayloadMarker.Plain);
    expect(payload.subarray(1).toString('utf8')).toBe(JSON.stringify(row));
    expect(await codec.decode(payload)).toEqual(row);
  });

  it.each([
    ['gzip', PayloadMarker.Gzip],
    ['brotli', PayloadMarker.Brotli],
  ] as const)(
    'compresses with %s above the threshold and stays plain below it',
    async (algorithm, marker) => {
      const codec = new PayloadCodec(jsonSerializer, { algorithm, thresholdBytes: 100 });
      const big = { text: 'walpurge '.repeat(500) };
      const compressed = await codec.encode(big);
      expect(compressed[0]).toBe(marker);
      expect(compressed.length).toBeLessThan(JSON.stringify(big).length / 10);
      expect(await codec.decode(compressed)).toEqual(big);

      const small = await codec.encode({ a: 1 });
      expect(small[0]).toBe(PayloadMarker.Plain);
      expect(await codec.decode(small)).toEqual({ a: 1 });
    },
  );

  it('reads entries by their marker, whatever the current compression setting', async () => {
    const writer = new PayloadCodec(jsonSerializer, { algorithm: 'brotli', thresholdBytes: 0 });
    const reader = new PayloadCodec(jsonSerializer);
    expect(await reader.decode(await writer.encode(row))).toEqual(row);
  });

  it('refuses unknown markers and undefined values with clear errors', async () => {
    const codec = new PayloadCodec(jsonSerializer);
    await expect(codec.decode(Buffer.from([0x7f, 0x31]))).rejects.toThrow(/unknown payload marker 127/);
    await expect(codec.encode(undefined)).rejects.toThrow(/cannot cache undefined/);
  });

  it('never evaluates stored text: a payload that looks like code stays a string', async () => {
    const codec = new PayloadCodec(jsonSerializer);
    const payload = Buffer.concat([
      Buffer.of(PayloadMarker.Plain),
      Buffer.from('"(() => { throw new Error(1) })()"'),
    ]);
    expect(await codec.decode(payload)).toBe('(() => { throw new Error(1) })()');
    await expect(codec.decode(Buffer.concat([Buffer.of(0), Buffer.from('process.exit(1)')]))).rejects.toThrow(
      SyntaxError,
    );
  });

  it('uses a pluggable serializer for bytes in and out', async () => {
    const dates: Serializer<Date> = {
      serialize: (value) => Buffer.from(String(value.getTime())),
      deserialize: (data) => new Date(Number(data.toString())),
    };
    const codec = new PayloadCodec(dates, { algorithm: 'gzip', thresholdBytes: 1 });
    const when = new Date('2026-11-22T14:00:00.123Z');
    const payload = await codec.encode(when);
    expect(payload[0]).toBe(PayloadMarker.Gzip);
    expect((await codec.decode(payload)).toISOString()).toBe(when.toISOString());
  });
});
