import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 that can go silent without closing anything: `freeze()` stops forwarding
 * in both directions while every socket stays open, the way a network partition or a failed-over
 * host looks to both ends (no FIN, no RST: a half-open connection). What either side sends while
 * frozen is held, as TCP would retransmit it, and delivered on `thaw()`; so is a side's closing.
 * Connections accepted while frozen are held the same way.
 */
export interface FreezableProxy {
  /** The proxy's address, e.g. to put in a connection URL instead of the target's. */
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  freeze(): void;
  thaw(): void;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

/** One direction of one connection: forwards, or holds while frozen. */
class Pipe {
  private held: Buffer[] = [];
  private endHeld = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly frozen: () => boolean,
  ) {
    from.on('data', (chunk: Buffer) => {
      if (this.frozen()) this.held.push(chunk);
      else to.write(chunk);
    });
    from.on('end', () => {
      if (this.frozen()) this.endHeld = true;
      else to.end();
    });
  }

  release(): void {
    for (const chunk of this.held) this.to.write(chunk);
    this.held = [];
    if (this.endHeld) this.to.end();
    this.endHeld = false;
  }
}

export async function startFreezableProxy(target: { host: string; port: number }): Promise<FreezableProxy> {
  let frozen = false;
  let accepted = 0;
  const sockets = new Set<Socket>();
  const pipes = new Set<Pipe>();
  // A side reset or destroyed while frozen: its peer learns of it on thaw, not before.
  const heldClosures = new Set<() => void>();

  const server = createServer((client) => {
    accepted += 1;
    const upstream = connect(target.port, target.host);
    const pair: Array<[Socket, Socket]> = [
      [client, upstream],
      [upstream, client],
    ];
    for (const [from, to] of pair) {
      sockets.add(from);
      const pipe = new Pipe(from, to, () => frozen);
      pipes.add(pipe);
      const closeOther = (): void => {
        sockets.delete(from);
        pipes.delete(pipe);
        if (frozen) heldClosures.add(() => to.destroy());
        else to.destroy();
      };
      from.on('error', () => {}).on('close', closeOther);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { address, port } = server.address() as AddressInfo;

  return {
    host: address,
    port,
    get connections() {
      return accepted;
    },
    urlFor(url) {
      const parsed = new URL(url);
      parsed.hostname = address;
      parsed.port = String(port);
      return parsed.toString();
    },
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const pipe of pipes) pipe.release();
      for (const closure of heldClosures) closure();
      heldClosures.clear();
    },
    async close() {
      frozen = false;
      heldClosures.clear();
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
