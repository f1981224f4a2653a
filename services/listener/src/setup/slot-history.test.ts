import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@walpurge/core';
import { checkSlotIdentity, type IdentityCheck, type SlotHistory } from './slot-history.js';

const history: SlotHistory = {
  slot: 'walpurge',
  systemIdentifier: '7000',
  startLsn: 0x100n,
  startedAt: new Date('2026-01-01T00:00:00Z'),
  durableLsn: 0x2000n,
  durableAt: new Date('2026-01-02T00:00:00Z'),
};

function check(overrides: Partial<IdentityCheck>): ReturnType<typeof checkSlotIdentity> {
  return checkSlotIdentity({
    slot: 'walpurge',
    table: 'walpurge_slot_history',
    history,
    systemIdentifier: '7000',
    slotLsn: 0x2000n,
    currentLsn: 0x9000n,
    ...overrides,
  });
}

describe('checkSlotIdentity', () => {
  it('accepts no history (first start) and a slot at or behind the recorded LSN', () => {
    expect(check({ history: undefined, slotLsn: undefined })).toBeUndefined();
    expect(check({ slotLsn: 0x2000n })).toBeUndefined();
    expect(check({ slotLsn: 0x1000n })).toBeUndefined(); // PostgreSQL saved an older position
  });

  it('refuses a slot one byte past the recorded LSN, naming both ends of the gap', () => {
    const error = check({ slotLsn: 0x2001n });
    expect(error?.code).toBe(ErrorCode.SlotMissing);
    expect(error?.message).toContain('changes from 0/2000 to 0/2001 were never purged');
    expect(error?.message).toContain('recorded 2026-01-02T00:00:00.000Z');
  });

  it('refuses a missing slot with the gap up to the current WAL position', () => {
    expect(check({ slotLsn: undefined })?.message).toContain(
      'changes from LSN 0/2000 (recorded 2026-01-02T00:00:00.000Z) to now (0/9000) were never purged',
    );
  });

  it('refuses another cluster even when its slot looks right', () => {
    const error = check({ systemIdentifier: '8000' });
    expect(error?.message).toContain('system identifier 7000, this one is 8000');
    expect(error?.hint).toContain('walpurge slot reset --purge-all');
    expect(error?.retriable).toBe(false);
  });
});
