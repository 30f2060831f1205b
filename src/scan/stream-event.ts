/** One event of the live scan stream, as the hub numbers it and the fan-out serialises it (src/scan/hub.ts, fanout.ts). */
export type StreamEventType = 'scan' | 'result' | 'error' | 'scanner';

export interface StreamEvent {
  id: number;
  type: StreamEventType;
  scannerId: string;
  station?: string;
  data: Record<string, unknown>;
  /** the event as one SSE message, UTF-8 encoded: made once at publish, written by every subscriber */
  wire?: Buffer;
}
