import type { RoleProcess, RoleSet } from './roles.js';
import type { ServiceName, SoakServices } from './services.js';

/** One step of the schedule. `active-listener` is whichever listener streams the slot at that moment. */
export type FaultStep =
  | { kind: 'kill-9'; role: string }
  | { kind: 'restart'; service: 'postgres' | 'kafka' | 'cache-redis' }
  | { kind: 'freeze'; service: ServiceName };

export interface FaultRecord {
  /** When it was injected (ISO). */
  at: string;
  kind: FaultStep['kind'];
  target: string;
  /** Injection to recovery (the role ready again, the service answering, the link thawed), ms. */
  durationMs: number;
  detail: string;
}

/**
 * Every role killed in turn (the active listener twice, so each listener takes over once), every
 * service restarted, every link frozen. The observer is not killed: it is the measuring instrument,
 * and its report lives in its memory.
 */
export const FULL_SCHEDULE: readonly FaultStep[] = [
  { kind: 'kill-9', role: 'active-listener' },
  { kind: 'kill-9', role: 'invalidator-a' },
  { kind: 'freeze', service: 'cache-redis' },
  { kind: 'kill-9', role: 'flusher-a' },
  { kind: 'restart', service: 'cache-redis' },
  { kind: 'kill-9', role: 'invalidator-b' },
  { kind: 'freeze', service: 'postgres' },
  { kind: 'kill-9', role: 'flusher-b' },
  { kind: 'freeze', service: 'kafka' },
  { kind: 'restart', service: 'kafka' },
  { kind: 'kill-9', role: 'active-listener' },
  { kind: 'freeze', service: 'queue-redis' },
  { kind: 'restart', service: 'postgres' },
];

/**
 * The short version (npm test): a takeover, a Kafka broker restarted, a consumer and a flusher
 * killed, a frozen cache link.
 */
export const SHORT_SCHEDULE: readonly FaultStep[] = [
  { kind: 'kill-9', role: 'active-listener' },
  { kind: 'restart', service: 'kafka' },
  { kind: 'kill-9', role: 'invalidator-a' },
  { kind: 'freeze', service: 'cache-redis' },
  { kind: 'kill-9', role: 'flusher-a' },
];

export interface FaultContext {
  services: SoakServices;
  roles: RoleSet;
  /** How long a link stays frozen, ms. */
  freezeMs: number;
  log: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Injects one fault and waits until the system is whole again (a killed role restarted and up). */
export async function injectFault(step: FaultStep, context: FaultContext): Promise<FaultRecord> {
  const at = new Date();
  const record = (target: string, detail: string): FaultRecord => ({
    at: at.toISOString(),
    kind: step.kind,
    target,
    durationMs: Date.now() - at.getTime(),
    detail,
  });
  if (step.kind === 'freeze') {
    context.services.freeze(step.service);
    await sleep(context.freezeMs);
    context.services.thaw(step.service);
    return record(step.service, `link frozen ${context.freezeMs} ms (open, silent), then thawed`);
  }
  if (step.kind === 'restart') {
    const detail = await context.services.restart(step.service);
    return record(step.service, detail);
  }
  return killRole(step.role, context, at);
}

async function killRole(name: string, context: FaultContext, at: Date): Promise<FaultRecord> {
  const { roles } = context;
  const record = (target: string, detail: string): FaultRecord => ({
    at: at.toISOString(),
    kind: 'kill-9',
    target,
    durationMs: Date.now() - at.getTime(),
    detail,
  });
  if (name === 'active-listener') {
    const active = await roles.activeListener();
    if (!active) return record(name, 'skipped: no listener was streaming at that moment');
    const standby = roles.listeners.find((listener) => listener !== active);
    await active.kill9();
    const killedAt = Date.now();
    // The standby takes the slot over once PostgreSQL noticed the walsender's peer is gone.
    if (standby) await standby.waitUp(true);
    const takeover = Date.now() - killedAt;
    active.start();
    await active.waitUp(false);
    return record(
      active.id,
      `${standby?.id ?? 'no standby'} took over in ${takeover} ms; ${active.id} back as standby`,
    );
  }
  const role: RoleProcess | undefined = roles.all.find((candidate) => candidate.id === name);
  if (!role) throw new Error(`fault schedule names an unknown role ${name}`);
  await role.kill9();
  role.start();
  await role.waitUp(true);
  return record(role.id, 'killed, restarted, ready');
}
