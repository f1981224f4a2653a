import { describe, expect, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import type { WalpurgeError } from '@walpurge/core';
import { ErrorCode } from '@walpurge/core';
import { classifyPgError } from './pg-errors.js';
import { assertSlotUsable, type SlotState } from './slot.js';
import { tablesToPublish } from './table-names.js';

const slot: SlotState = {
  name: 'walpurge',
  plugin: 'pgoutput',
  slotType: 'logical',
  database: 'app',
  active: false,
  activePid: null,
  confirmedFlushLsn: 1n,
  restartLsn: 1n,
  walStatus: 'reserved',
  invalidationReason: null,
  failover: null,
};

function thrown(fn: () => void): WalpurgeError {
  try {
    fn();
  } catch (error) {
    return error as WalpurgeError;
  }
  throw new Error('expected an error');
}

describe('listener setup', () => {
  it("publishes the rules' tables, normalising users → public.users, unless tables are configured", () => {
    const rules = [{ table: 'users' }, { table: 'public.users' }, { table: 'billing.invoices' }].map((r) => ({
      ...r,
      redis: { keys: ['k'] },
    }));
    const fromRules = WalpurgeConfig.parse({ database: { url: 'postgres://x' }, rules });
    expect(tablesToPublish(fromRules)).toEqual([
      { schema: 'public', table: 'users' },
      { schema: 'billing', table: 'invoices' },
    ]);
    const configured = WalpurgeConfig.parse({ database: { url: 'postgres://x', tables: ['orders'] }, rules });
    expect(tablesToPublish(configured)).toEqual([{ schema: 'public', table: 'orders' }]);
  });

  it('fails loudly on a slot invalidated by max_slot_wal_keep_size, with what to do', () => {
    const error = thrown(() => assertSlotUsable({ ...slot, walStatus: 'lost' }, 'app'));
    expect(error.code).toBe(ErrorCode.SlotInvalidated);
    expect(error.retriable).toBe(false);
    expect(error.hint).toContain('walpurge slot reset --purge-all');
    expect(error.hint).toContain('max_slot_wal_keep_size');
    expect(thrown(() => assertSlotUsable({ ...slot, invalidationReason: 'wal_removed' }, 'app')).code).toBe(
      ErrorCode.SlotInvalidated,
    );
    expect(() => assertSlotUsable(slot, 'app')).not.toThrow();
    expect(thrown(() => assertSlotUsable(slot, 'other')).code).toBe(ErrorCode.DatabaseSetup);
  });

  it('classifies PostgreSQL errors: busy slot retries (standby), invalidated slot is fatal', () => {
    const context = { slot: 'walpurge', publication: 'walpurge' };
    const busy = classifyPgError(
      Object.assign(new Error('replication slot "walpurge" is active for PID 42'), { code: '55006' }),
      context,
    );
    expect(busy).toMatchObject({ code: ErrorCode.SlotBusy, retriable: true });
    const lost = classifyPgError(
      Object.assign(new Error('can no longer get changes from replication slot "walpurge"'), {
        code: '55000',
      }),
      context,
    );
    expect(lost).toMatchObject({ code: ErrorCode.SlotInvalidated, retriable: false });
    const refused = classifyPgError(
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      context,
    );
    expect(refused).toMatchObject({ code: ErrorCode.DatabaseUnreachable, retriable: true });
  });
});
