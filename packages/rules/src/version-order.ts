/**
 * Order of two row versions as text, for the consistency observer: a rule's `version` column is an
 * integer counter or a timestamp/date. The cache side may hold the SDK's rendering (a JS Date's
 * toISOString: milliseconds) and the change stream the listener's (ISO, microseconds), or
 * PostgreSQL's own text form when the row is re-read: timestamps compare by epoch at the coarser
 * precision of the two, so an entry loaded from the very row is never called older than it.
 * undefined: the two cannot be compared (counted as unverifiable, never as a verdict).
 */
export type VersionOrder = -1 | 0 | 1;

// An integer or a numeric with a scale ('42', '-7', '42.50'): compared exactly, as decimals.
const DECIMAL = /^([+-]?)(\d+)(?:\.(\d*))?$/;
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

/**
 * Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). Not Date.UTC,
 * which reads years 0-99 as 1900-1999.
 */
function daysFromCivil(year: bigint, month: bigint, day: bigint): bigint {
  const y = month <= 2n ? year - 1n : year;
  const era = (y >= 0n ? y : y - 399n) / 400n;
  const yearOfEra = y - era * 400n;
  const dayOfYear = (153n * (month > 2n ? month - 3n : month + 9n) + 2n) / 5n + day - 1n;
  const dayOfEra = yearOfEra * 365n + yearOfEra / 4n - yearOfEra / 100n + dayOfYear;
  return era * 146_097n + dayOfEra - 719_468n;
}

function parseInstant(text: string): Instant | undefined {
  const match = TIMESTAMP.exec(text.trim());
  if (!match) return undefined;
  const [, y = '', mo, d, h = '0', mi = '0', s = '0', fraction = '', offset] = match;
  const [month, day, hour, minute, second] = [mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second > 60)
    return undefined;
  const days = daysFromCivil(BigInt(y), BigInt(month), BigInt(day));
  const seconds = days * 86_400n + BigInt(hour * 3600 + minute * 60 + second - offsetSeconds(offset));
  const nanos = BigInt(fraction.padEnd(9, '0') || '0');
  return { seconds, nanos, digits: fraction.length };
}

const sign = (value: bigint): VersionOrder => (value < 0n ? -1 : value > 0n ? 1 : 0);

/** Two decimals' texts as integers at the same scale (the longer fraction), or undefined. */
function compareDecimals(a: string, b: string): VersionOrder | undefined {
  const x = DECIMAL.exec(a);
  const y = DECIMAL.exec(b);
  if (!x || !y) return undefined;
  const scale = Math.max(x[3]?.length ?? 0, y[3]?.length ?? 0);
  const scaled = ([, minus, whole = '', fraction = '']: RegExpExecArray): bigint =>
    (minus === '-' ? -1n : 1n) * BigInt(whole + fraction.padEnd(scale, '0'));
  return sign(scaled(x) - scaled(y));
}

/** -1 when a is older than b, 0 equal, 1 newer; undefined when they cannot be compared. */
export function compareVersions(a: string, b: string): VersionOrder | undefined {
  const left = a.trim();
  const right = b.trim();
  // Integers and numerics ('42', '42.000', '42.5' vs '42.50'), exactly.
  const decimal = compareDecimals(left, right);
  if (decimal !== undefined) return decimal;
  const x = parseInstant(left);
  const y = parseInstant(right);
  if (!x || !y) return undefined;
  const seconds = sign(x.seconds - y.seconds);
  if (seconds !== 0) return seconds;
  // Truncate both fractions to the coarser precision written.
  const unit = 10n ** BigInt(9 - Math.min(x.digits, y.digits));
  return sign(x.nanos / unit - y.nanos / unit);
}
