import { describe, expect, it } from 'vitest';
import { BoundedScheduler } from './scheduler.js';

describe('BoundedScheduler', () => {
  it('runs items in due order and refuses beyond its capacity', async () => {
    const ran: string[] = [];
    const scheduler = new BoundedScheduler<string>(3, (item) => ran.push(item));
    const now = Date.now();
    expect(scheduler.tryAdd(now + 30, 'c')).toBe(true);
    expect(scheduler.tryAdd(now + 10, 'a')).toBe(true);
    expect(scheduler.tryAdd(now + 20, 'b')).toBe(true);
    expect(scheduler.hasRoom(1)).toBe(false);
    expect(scheduler.tryAdd(now, 'refused')).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(scheduler.size).toBe(0);
  });

  it('forgets everything on stop', async () => {
    const ran: number[] = [];
    const scheduler = new BoundedScheduler<number>(10, (item) => ran.push(item));
    scheduler.tryAdd(Date.now(), 1);
    scheduler.stop();
    expect(scheduler.tryAdd(Date.now(), 2)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ran).toEqual([]);
  });
});
