import { describe, expect, it } from 'vitest';
import { RepeatedErrorLog } from './repeated-error-log.js';
import { capturingLogger } from './test-support/log-lines.js';

type Line = { level: number; msg: string; repeated?: number; err?: { message?: string } };

function setup() {
  const { logger, lines: raw } = capturingLogger('debug');
  const lines = raw as Line[];
  let now = 1_000_000;
  const log = new RepeatedErrorLog({
    logger,
    level: 'error',
    message: 'flush worker error',
    summaryIntervalMs: 30_000,
    now: () => now,
  });
  return { lines, log, advance: (ms: number) => (now += ms) };
}

const refused = (): Error =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' });
const ERROR = 50;
const WARN = 40;
const INFO = 30;

describe('RepeatedErrorLog', () => {
  it('logs the first error of a kind at error, then one summary of its repeats per interval', () => {
    const { lines, log, advance } = setup();
    // 10 minutes of reconnect attempts, 5 a second.
    for (let i = 0; i < 3_000; i += 1) {
      log.report(refused());
      advance(200);
    }
    expect(lines.filter((line) => line.level === ERROR)).toHaveLength(1);
    const summaries = lines.filter((line) => line.level === WARN);
    expect(summaries.length).toBeGreaterThanOrEqual(19);
    expect(summaries.length).toBeLessThanOrEqual(20);
    expect(summaries[0]).toMatchObject({
      repeated: 150,
      msg: 'flush worker error (repeated 150 times in the last 30s)',
    });
    // Every repeat is counted in some line, none twice.
    expect(summaries.reduce((sum, line) => sum + (line.repeated ?? 0), 0)).toBeLessThanOrEqual(2_999);
    expect(summaries.reduce((sum, line) => sum + (line.repeated ?? 0), 0)).toBeGreaterThan(2_999 - 150);
  });

  it('logs each new kind of error at once, and starts over after recovering', () => {
    const { lines, log, advance } = setup();
    log.report(refused());
    log.report(refused());
    log.report(new Error('Connection is closed.'));
    log.report(new Error('Connection is closed.'));
    expect(lines.map((line) => [line.level, line.err?.message])).toEqual([
      [ERROR, 'connect ECONNREFUSED 127.0.0.1:6390'],
      [ERROR, 'Connection is closed.'],
    ]);
    advance(5_000);
    log.recovered();
    expect(lines[2]).toMatchObject({
      level: INFO,
      msg: 'flush worker error: no longer failing',
      unreportedRepeats: 2,
    });
    log.recovered(); // nothing failed since: silent
    expect(lines).toHaveLength(3);
    log.report(refused());
    expect(lines[3]).toMatchObject({ level: ERROR, msg: 'flush worker error' });
  });
});
