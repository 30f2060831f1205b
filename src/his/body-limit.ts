/**
 * Body size limit for the HIS port: Hono's bodyLimit, with its Content-Length branch taken first.
 *
 * Hono's middleware starts by reading `c.req.raw.body`, which makes @hono/node-server build a full
 * WHATWG Request (ReadableStream, AbortSignal) for every call — about a fifth of a verification's
 * CPU on the HIS port. When the request declares its length (and is not chunked) the answer needs
 * only that header, exactly as in Hono's own branch, and Node's HTTP parser guarantees the body is
 * that long; chunked bodies still go through Hono's streaming count.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit as honoBodyLimit } from 'hono/body-limit';

export interface BodyLimitOptions {
  maxSize: number;
  onError: (c: Context) => Response | Promise<Response>;
}

export function bodyLimit(options: BodyLimitOptions): MiddlewareHandler {
  const streaming = honoBodyLimit(options);
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      return Number.parseInt(length, 10) > options.maxSize ? options.onError(c) : next();
    }
    return streaming(c, next);
  };
}
