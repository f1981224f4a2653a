import { ChangeEventV1, type ChangeEvent } from './change-event.js';
import { checkChangeEventV1 } from './change-event-fast-check.js';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

/** Why a message could not be turned into a change event; goes into dead-letter headers. */
export class UndecodableEventError extends WalpurgeError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCode.EventInvalid, message, { retriable: false, cause });
    this.name = 'UndecodableEventError';
  }
}

/** Parses and validates a protocol v1 message. Never returns a partially valid event. */
export function decodeChangeEventV1(payload: Buffer | string): ChangeEvent {
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (error) {
    throw new UndecodableEventError(`not JSON: ${(error as Error).message}`, error);
  }
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const checked = checkChangeEventV1(json as Record<string, unknown>);
    if (checked) return checked;
  }
  const parsed = ChangeEventV1.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
    throw new UndecodableEventError(`not a walpurge v1 change event: ${where}${first?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
