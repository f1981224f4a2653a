import { LogicalReplicationService } from 'pg-logical-replication';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isWalpurgeError } from '@walpurge/core';
import { assertSupportedLibrary, replicationSocket } from './replication-socket.js';

describe('replicationSocket', () => {
  const fresh = (): LogicalReplicationService =>
    new LogicalReplicationService({ connectionString: 'postgres://localhost/none' });

  it('accepts the installed pg-logical-replication (the pinned version has the private field)', () => {
    expect(() => assertSupportedLibrary(fresh())).not.toThrow();
  });

  it("returns the connection's socket when it is there", () => {
    const service = fresh();
    const stream = { pause() {}, resume() {}, destroy() {}, destroyed: false };
    (service as unknown as { _connection: unknown })._connection = { stream };
    expect(replicationSocket(service)).toBe(stream);
  });

  it('fails loudly, not retriable and with the fix, when a library version moved the private field', () => {
    const moved = fresh();
    delete (moved as unknown as { _connection?: unknown })._connection;
    let error: unknown;
    try {
      assertSupportedLibrary(moved);
    } catch (caught) {
      error = caught;
    }
    expect(isWalpurgeError(error) && error.code).toBe(ErrorCode.Internal);
    expect(isWalpurgeError(error) && error.retriable).toBe(false);
    expect(String((error as Error).message)).toMatch(/unsupported pg-logical-replication version/);
    expect(isWalpurgeError(error) && error.hint).toMatch(/pinned in services\/listener\/package.json/);

    const connected = fresh();
    (connected as unknown as { _connection: unknown })._connection = { socket: {} };
    expect(() => replicationSocket(connected)).toThrow(/no `_connection.stream` socket/);
  });
});
