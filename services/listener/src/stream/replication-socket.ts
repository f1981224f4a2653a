import type { LogicalReplicationService } from 'pg-logical-replication';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

/** What the session needs of the replication connection's socket. */
export interface ReplicationSocket {
  pause(): void;
  resume(): void;
  destroy(): void;
  readonly destroyed: boolean;
}

/**
 * pg-logical-replication offers no flow control that keeps keepalives in order with data (its
 * `flowControl` queue handles keepalives ahead of queued data), nor a way to drop a dead connection
 * at once, so we reach the connection's socket ourselves: the private `_connection.stream` that the
 * library's own flowControl pauses. A private field may vanish in any release: the dependency is
 * pinned to an exact version (services/listener/package.json, test/package.json), and this check
 * makes an upgrade that moved it fail at start with a clear error, never stream without flow control
 * or without the dead-connection watchdog's way out. (Replacing the library with pg's own copy-both
 * support would reach into pg's equally undocumented `client.connection` instead: no better.)
 */
export function replicationSocket(service: LogicalReplicationService): ReplicationSocket {
  const holder = service as unknown as { _connection?: { stream?: Partial<ReplicationSocket> } | null };
  const stream = holder._connection?.stream;
  if (
    stream &&
    typeof stream.pause === 'function' &&
    typeof stream.resume === 'function' &&
    typeof stream.destroy === 'function'
  )
    return stream as ReplicationSocket;
  throw unsupportedLibrary('its connection has no `_connection.stream` socket');
}

/** At construction: the private field exists (null until connected) in the versions we support. */
export function assertSupportedLibrary(service: LogicalReplicationService): void {
  if (!('_connection' in service) || typeof service.acknowledge !== 'function')
    throw unsupportedLibrary('it has no `_connection` field or no `acknowledge` method');
}

function unsupportedLibrary(what: string): WalpurgeError {
  return new WalpurgeError(
    ErrorCode.Internal,
    `unsupported pg-logical-replication version: ${what}; the listener needs that private socket for backpressure and to drop dead connections`,
    {
      retriable: false,
      hint: 'install the exact pg-logical-replication version pinned in services/listener/package.json (pnpm install --frozen-lockfile)',
    },
  );
}
