/**
 * Kafka's murmur2 (the Java client's Utils.murmur2, which kafkajs's DefaultPartitioner reproduces),
 * in 32-bit integer arithmetic: the partition of a key must not depend on which client wrote it,
 * or a row's events would land in two partitions across a client switch and lose their order.
 */
const SEED = 0x9747b28c;
const M = 0x5bd1e995;

export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k =
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The Java switch falls through: 3 bytes left take all three lines, 1 byte only the last.
  const left = length & 3;
  if (left >= 3) h ^= (data[whole + 2] as number) << 16;
  if (left >= 2) h ^= (data[whole + 1] as number) << 8;
  if (left >= 1) {
    h ^= data[whole] as number;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The partition of a keyed record as kafkajs's DefaultPartitioner (and the Java client) picks it:
 * the positive part of murmur2(key), modulo the partition count. Returned before the modulo: the
 * platformatic producer takes it modulo the topic's partition count itself.
 */
export function keyHash(key: Uint8Array): number {
  return murmur2(key) & 0x7fffffff;
}
