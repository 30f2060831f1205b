/**
 * Stream tickets: how a browser opens the live scan stream. `EventSource` (and a browser WebSocket)
 * cannot send an `Authorization` header, so a page asks for a ticket with its API key over POST and
 * passes the ticket in the stream URL:
 *
 *   POST /v1/stream-tickets {station?, scanner?}      (API key)  → 201 {ticket, expires_at, stream_url, …}
 *   GET  /v1/scans?station=…&ticket=…                 (no key: the ticket is the credential)
 *
 * A ticket is 32 random bytes (base64url), valid for `his.streamTickets.ttlSeconds` (default 30 s),
 * good for ONE stream: it is spent when a stream opens with it (a reconnect asks for a new one and
 * resumes with `lastEventId`). It is bound to the station/scanner filter it was asked for: a stream
 * opened with it must name exactly that filter (the `stream_url` in the answer does). Only the SM3 of a
 * ticket is kept, tickets are never logged, and at most `maxOutstanding` unspent tickets exist (the
 * oldest is dropped first). A bad, expired or spent ticket is a failed authentication (401 1010) and
 * counts in the failed-auth throttle like a wrong key.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context, MiddlewareHandler, Next } from 'hono';
import AjvModule from 'ajv';
import type { HisExtension } from './app.ts';
import { throttled, type AuthThrottle } from './auth-throttle.ts';

const Ajv = AjvModule as unknown as typeof AjvModule.default;

export interface StreamTicketOptions {
  ttlSeconds: number;
  maxOutstanding: number;
  clock?: () => number;
}

export const STREAM_TICKET_DEFAULTS = { ttlSeconds: 30, maxOutstanding: 1000 } as const;

export interface TicketFilter {
  station?: string;
  scanner?: string;
}

interface Held {
  filter: TicketFilter;
  expiresAt: number;
}

export type Redemption = { ok: true; filter: TicketFilter } | { ok: false; why: 'unknown' | 'expired' | 'filter' };

const digest = (ticket: string) => createHash('sm3').update(ticket).digest('hex');

/** Issued, unspent tickets by their SM3; insertion order is issue order (oldest first). */
export class StreamTickets {
  readonly #held = new Map<string, Held>();
  readonly #clock: () => number;

  constructor(readonly options: StreamTicketOptions = STREAM_TICKET_DEFAULTS) {
    this.#clock = options.clock ?? Date.now;
  }

  get outstanding(): number {
    this.#sweep();
    return this.#held.size;
  }

  issue(filter: TicketFilter): { ticket: string; expiresAt: number } {
    this.#sweep();
    while (this.#held.size >= this.options.maxOutstanding) this.#held.delete(this.#held.keys().next().value!);
    const ticket = randomBytes(32).toString('base64url');
    const expiresAt = this.#clock() + this.options.ttlSeconds * 1000;
    this.#held.set(digest(ticket), { filter: { ...filter }, expiresAt });
    return { ticket, expiresAt };
  }

  /** Spends the ticket (whatever the outcome: a ticket is never tried twice) and checks its filter. */
  redeem(ticket: string, filter: TicketFilter): Redemption {
    const key = digest(ticket);
    const held = this.#held.get(key);
    if (!held) return { ok: false, why: 'unknown' };
    this.#held.delete(key);
    if (held.expiresAt <= this.#clock()) return { ok: false, why: 'expired' };
    if ((held.filter.station ?? '') !== (filter.station ?? '') || (held.filter.scanner ?? '') !== (filter.scanner ?? '')) return { ok: false, why: 'filter' };
    return { ok: true, filter: held.filter };
  }

  #sweep(): void {
    const now = this.#clock();
    for (const [key, held] of this.#held) {
      if (held.expiresAt > now) break; // issue order = expiry order (one ttl for all)
      this.#held.delete(key);
    }
  }
}

const ajv = new Ajv({ allErrors: false, strict: true });
/** The body of POST /v1/stream-tickets: validated with it and published in the OpenAPI document. */
const TICKET_REQUEST = {
  type: 'object',
  additionalProperties: false,
  properties: {
    station: { type: 'string', minLength: 1, maxLength: 64 },
    scanner: { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,64}$' },
  },
} as const;
const validateRequest = ajv.compile(TICKET_REQUEST);

const WHY: Record<Exclude<Redemption, { ok: true }>['why'], string> = {
  unknown: 'stream ticket unknown or already used',
  expired: 'stream ticket expired',
  filter: 'stream ticket was issued for another station/scanner filter',
};

/** Paths a ticket may open (the stream routes); everything else still needs the key. */
const STREAM_PATHS = new Set(['/v1/scans', '/v1/scans/ws']);

/**
 * Auth for the stream routes: `?ticket=` on a stream path is redeemed (401 when it fails, counted by
 * the failed-auth throttle when one is given); any other request goes to the key check `auth`.
 */
export function ticketOrKey(tickets: StreamTickets, auth: MiddlewareHandler, throttle?: AuthThrottle): MiddlewareHandler {
  const check: MiddlewareHandler = async (c, next) => {
    const r = tickets.redeem(c.req.query('ticket')!, { station: c.req.query('station'), scanner: c.req.query('scanner') });
    if (!r.ok) return c.json({ ret_code: '1010', ret_msg: `无权限 no permission: ${WHY[r.why]}` }, 401);
    await next();
  };
  const ticketCheck = throttle ? throttled(throttle, 'stream-ticket', check) : check;
  return async (c: Context, next: Next) => {
    if (c.req.query('ticket') === undefined || c.req.method !== 'GET' || !STREAM_PATHS.has(c.req.path)) return auth(c, next);
    return ticketCheck(c, next);
  };
}

/** POST /v1/stream-tickets as a HIS extension (documented for the OpenAPI document). */
export function streamTicketExtension(tickets: StreamTickets): HisExtension {
  return {
    paths: {
      '/v1/stream-tickets': {
        post: {
          summary: 'A short-lived, single-use ticket that opens the scan stream from a browser (EventSource/WebSocket cannot send Authorization)',
          security: [{ apiKey: [] as string[] }],
          requestBody: {
            required: false,
            content: {
              'application/json': {
                schema: TICKET_REQUEST,
              },
            },
          },
          responses: {
            201: { description: '{ticket, expires_at, expires_in_seconds, stream_url, websocket_url}: open stream_url (relative) within the ticket\'s life' },
            400: { description: 'bad parameters (9001)' },
            401: { description: 'no or unknown API key (1010)' },
            429: { description: 'too many failed authentications from this address (1010)' },
          },
        },
      },
    },
    install(app, { auth }) {
      app.post('/v1/stream-tickets', auth, async (c) => {
        const text = await c.req.text();
        let body: unknown = {};
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            return c.json({ ret_code: '9001', ret_msg: 'bad parameters: body is not valid JSON' }, 400);
          }
        }
        if (!validateRequest(body)) {
          const e = validateRequest.errors?.[0];
          return c.json({ ret_code: '9001', ret_msg: `bad parameters: ${e?.instancePath || '(body)'} ${e?.message ?? 'invalid'}` }, 400);
        }
        const filter = body as TicketFilter;
        const { ticket, expiresAt } = tickets.issue(filter);
        const query = new URLSearchParams();
        if (filter.station) query.set('station', filter.station);
        if (filter.scanner) query.set('scanner', filter.scanner);
        query.set('ticket', ticket);
        c.header('Cache-Control', 'no-store');
        return c.json(
          {
            ret_code: '0000',
            ticket,
            expires_at: new Date(expiresAt).toISOString(),
            expires_in_seconds: tickets.options.ttlSeconds,
            stream_url: `/v1/scans?${query}`,
            websocket_url: `/v1/scans/ws?${query}`,
          },
          201,
        );
      });
    },
  };
}
