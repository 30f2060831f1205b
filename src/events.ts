/**
 * The appliance's events, carried by one bus (src/platform/event-bus.ts) that `startAppliance` makes:
 * components emit, others listen under their own name and are removed when they stop.
 */
import type { EhcError } from './errors.ts';
import type { UpstreamIdentity } from './protocol/upstream.ts';
import type { StreamEvent } from './scan/hub.ts';
import type { VerifyRequest, VerifyResult } from './verify/types.ts';

export interface ApplianceEvents {
  /** a scanner read something (as it went out on the live stream) */
  scan: StreamEvent;
  verified: { result: VerifyResult; request: VerifyRequest; elapsedMs: number };
  rejected: { error: EhcError; request: VerifyRequest; elapsedMs: number };
  /** the home system's answer to a deferred verification arrived through the replay */
  'deferred-answer': { outVerifyNo: string; answer: UpstreamIdentity | EhcError };
  /** records were committed to the outbox */
  'outbox-append': { records: number };
  /** a component changed state (a scanner attached, detached or was refused) */
  'component-state': { component: string; id: string; state: string; detail?: string };
}
