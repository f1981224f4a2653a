/**
 * A replication connection can die without closing: after a failover or a network partition no FIN
 * or RST arrives, reads just stop, and the kernel gives up only after its retransmit timeout (about
 * 15 minutes on Linux; TCP keepalive does not fire while unacknowledged status updates are in
 * flight). Meanwhile the session would look healthy. Every status update asks the server for a
 * reply, so a live server is never silent much longer than one status interval: the watchdog turns
 * prolonged silence into "late" (not ready, lag shows the silence) and then "dead" (reconnect).
 */
export interface SilenceWatchdogOptions {
  statusIntervalMs: number;
  /** Silent status intervals after which the connection counts as dead. */
  intervals: number;
  /**
   * The server's wal_sender_timeout (0 = none). A live but busy walsender (replaying a huge
   * transaction whose changes are all filtered out) may answer nothing until half of it has passed,
   * when it pings on its own: the dead deadline is never shorter than the whole timeout, or such a
   * transaction would turn into a reconnect loop that never gets past it.
   */
  walSenderTimeoutMs: number;
  /** Called once, when the silence reaches the deadline. */
  onDead(silentMs: number): void;
}

/**
 * Before the stream starts (connecting, authenticating, START_REPLICATION) nothing asks the server
 * for replies, and connection setup may legitimately take a while on a busy server: a longer floor.
 */
const STARTUP_TIMEOUT_FLOOR_MS = 30_000;

export class SilenceWatchdog {
  readonly lateAfterMs: number;
  readonly deadAfterMs: number;
  private lastHeardAt = Date.now();
  private suspended = false;
  private streaming = false;
  private fired = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SilenceWatchdogOptions) {
    this.deadAfterMs = Math.max(options.statusIntervalMs * options.intervals, options.walSenderTimeoutMs);
    this.lateAfterMs = Math.min(this.deadAfterMs, options.statusIntervalMs * 1.5 + 500);
  }

  start(): void {
    this.lastHeardAt = Date.now();
    const every = Math.max(50, Math.min(1000, this.deadAfterMs / 8));
    this.timer = setInterval(() => this.check(), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The replication stream started: from now on the server answers every status update. */
  streamingStarted(): void {
    this.streaming = true;
    this.heard();
  }

  /** A message from the server (data or keepalive). */
  heard(): void {
    this.lastHeardAt = Date.now();
  }

  /**
   * While the listener itself stops reading (backpressure), the server's messages wait in the socket:
   * silence then says nothing about the connection. Resuming starts the count afresh.
   */
  suspend(): void {
    this.suspended = true;
  }

  resume(): void {
    this.suspended = false;
    this.heard();
  }

  /** Milliseconds since the server's last message; 0 while reading is suspended. */
  silenceMs(): number {
    return this.suspended ? 0 : Date.now() - this.lastHeardAt;
  }

  /** Silent for longer than a live server ever is: possibly dead. */
  late(): boolean {
    return this.streaming && this.silenceMs() > this.lateAfterMs;
  }

  private check(): void {
    if (this.fired) return;
    const silent = this.silenceMs();
    const deadline = this.streaming ? this.deadAfterMs : Math.max(this.deadAfterMs, STARTUP_TIMEOUT_FLOOR_MS);
    if (silent < deadline) return;
    this.fired = true;
    this.stop();
    this.options.onDead(silent);
  }
}
