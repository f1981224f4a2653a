/**
 * Order of two row versions as text, for the consistency observer: a rule's `version` column is an
 * integer counter or a timestamp/date. The cache side may hold the SDK's rendering (a JS Date's
 * toISOString: milliseconds) and the change stream the listener's (ISO, microseconds), or
 * PostgreSQL's own text form when the row is re-read: timestamps compare by epoch at the coarser
 * precision of the two, so an entry loaded from the very row is never called older than it.
 * undefined: the two cannot be compared (counted as unverifiable, never as a verdict).
 */
export type VersionOrder = -1 | 0 | 1;

const INTEGER = /^[+-]?\d+$/;
// ISO-8601 (T) or PostgreSQL's text form (space), optional fraction and offset; a bare date too.
const TIMESTAMP =
  /^(\d{4,})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

interface Instant {
  /** Whole seconds since the epoch. */
  seconds: bigint;
  /** Fraction as nanoseconds. */
  nanos: bigint;
  /** Digits of the fraction written: 0 (seconds), 3 (ms), 6 (µs)… */
  digits: number;
}

function offsetSeconds(offset: string | undefined): number {
  if (!offset || offset.toUpperCase() === 'Z') return 0;
  const sign = offset.startsWith('-') ? -1 : 1;
  const digits = offset.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || '0') * 60);
}

function parseInstant(text: string): Instant | undefined {
  const match = TIMESTAMP.exec(text.trim());
  if (!match) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', offset] = match;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return undefined;
  const seconds = BigInt(ms / 1000 - offsetSeconds(offset));
  const nanos = BigInt(fraction.padEnd(9, '0') || '0');
  return { seconds, nanos, digits: fraction.length };
}

const sign = (value: bigint): VersionOrder => (value < 0n ? -1 : value > 0n ? 1 : 0);

/** -1 when a is older than b, 0 equal, 1 newer; undefined when they cannot be compared. */
export function compareVersions(a: string, b: string): VersionOrder | undefined {
  const left = a.trim();
  const right = b.trim();
  if (INTEGER.test(left) && INTEGER.test(right)) return sign(BigInt(left) - BigInt(right));
  // A numeric integer column's text may carry a zero scale ('42.000'): still an integer.
  const integerOf = (text: string): string | undefined => /^([+-]?\d+)(?:\.0*)?$/.exec(text)?.[1];
  const li = integerOf(left);
  const ri = integerOf(right);
  if (li !== undefined && ri !== undefined) return sign(BigInt(li) - BigInt(ri));
  const x = parseInstant(left);
  const y = parseInstant(right);
  if (!x || !y) return undefined;
  const seconds = sign(x.seconds - y.seconds);
  if (seconds !== 0) return seconds;
  // Truncate both fractions to the coarser precision written.
  const unit = 10n ** BigInt(9 - Math.min(x.digits, y.digits));
  return sign(x.nanos / unit - y.nanos / unit);
}
