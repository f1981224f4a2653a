import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startFreezableProxy, type FreezableProxy } from './freezable-proxy.js';
import { waitFor } from './wait-for.js';

/** An echo server on 127.0.0.1 that tells when a connection to it closes. */
async function echoServer(): Promise<{ server: Server; port: number; closed: () => number }> {
  let closed = 0;
  const server = createServer((socket) => {
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('error', () => {}).on('close', () => (closed += 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, closed: () => closed };
}

function client(proxy: FreezableProxy): { socket: Socket; received: () => string } {
  let text = '';
  const socket = connect(proxy.port, proxy.host);
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.on('error', () => {});
  return { socket, received: () => text };
}

describe('startFreezableProxy', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('forwards, holds everything while frozen without closing, and delivers it on thaw', async () => {
    const echo = await echoServer();
    const proxy = await startFreezableProxy({ host: '127.0.0.1', port: echo.port });
    cleanups.push(
      () => proxy.close(),
      () => new Promise((resolve) => echo.server.close(() => resolve())),
    );
    const a = client(proxy);
    a.socket.write('one.');
    await waitFor('echo before freeze', async () => a.received() === 'one.');

    proxy.freeze();
    a.socket.write('two.');
    const b = client(proxy); // accepted while frozen: held too
    b.socket.write('three.');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(a.received()).toBe('one.');
    expect(b.received()).toBe('');
    expect(a.socket.destroyed).toBe(false);

    // A side closing while frozen: its peer learns of it only on thaw.
    a.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(echo.closed()).toBe(0);

    proxy.thaw();
    await waitFor('held data delivered', async () => b.received() === 'three.');
    await waitFor('held close delivered', async () => echo.closed() === 1);
    expect(proxy.connections).toBe(2);
    b.socket.destroy();
  });
});
