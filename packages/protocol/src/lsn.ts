/**
 * PostgreSQL log sequence numbers ("16/B374D848") as 64-bit integers, so they can be compared and
 * subtracted (lag in bytes) without string tricks.
 */
const LSN_PATTERN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

export function isLsn(text: string): boolean {
  return LSN_PATTERN.test(text);
}

export function parseLsn(text: string): bigint {
  if (!LSN_PATTERN.test(text)) throw new TypeError(`not a PostgreSQL LSN: ${JSON.stringify(text)}`);
  const [high, low] = text.split('/') as [string, string];
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

export function formatLsn(value: bigint): string {
  if (value < 0n) throw new RangeError('LSN cannot be negative');
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function compareLsn(a: string, b: string): number {
  const x = parseLsn(a);
  const y = parseLsn(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
