import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { keyHash, murmur2 } from './murmur2.js';

// kafkajs's own murmur2 (what its DefaultPartitioner hashes keys with), loaded from its sources.
const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require(
  require.resolve('kafkajs').replace(/index\.js$/, 'src/producer/partitioners/default/murmur2.js'),
) as (key: Buffer | string) => number;

describe('murmur2', () => {
  it("gives the Java client's values", () => {
    // Values from the Java client's murmur2 (what every Kafka client must agree on).
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('a-little-bit-long-string'))).toBe(-985981536);
    expect(murmur2(Buffer.from('a-little-bit-longer-string'))).toBe(-1486304829);
    expect(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'))).toBe(-58897971);
    expect(murmur2(Buffer.from('abc'))).toBe(479470107);
  });

  it("agrees with kafkajs's on every length and on walpurge's keys", () => {
    const keys: Buffer[] = [];
    for (let length = 0; length <= 70; length += 1)
      for (let round = 0; round < 20; round += 1) keys.push(randomBytes(length));
    for (let id = 0; id < 500; id += 1)
      keys.push(Buffer.from(`public.docs:{"id":${id},"name":"é${'x'.repeat(id % 9)}"}`));
    for (const key of keys) expect(murmur2(key), key.toString('hex')).toBe(kafkajsMurmur2(key));
  });

  it('is never negative as a partition hash', () => {
    for (let round = 0; round < 2000; round += 1) expect(keyHash(randomBytes(12))).toBeGreaterThanOrEqual(0);
  });
});
