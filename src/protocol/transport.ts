/**
 * How a sealed request travels in a dialect: the body form (JSON, national; or
 * application/x-www-form-urlencoded) and the URL (one URL for every method, national; or a path per
 * method appended to the configured URL). Answers are JSON in every dialect seen. The card-system
 * side (simulator) reads a body with `decodeRequestBody`.
 */
import type { Dialect } from './dialect.ts';

export interface EncodedBody {
  payload: string;
  contentType: string;
}

export const FORM_TYPE = 'application/x-www-form-urlencoded';
export const JSON_TYPE = 'application/json; charset=utf-8';

/** The request body as sent. Form fields keep the envelope's order. */
export function encodeRequestBody(envelope: object, dialect: Pick<Dialect, 'body'>): EncodedBody {
  if (dialect.body === 'form') {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(envelope)) if (v !== undefined) form.append(k, v === null ? '' : String(v));
    return { payload: form.toString(), contentType: `${FORM_TYPE}; charset=utf-8` };
  }
  return { payload: JSON.stringify(envelope), contentType: JSON_TYPE };
}

/**
 * A request body as received → its fields. Form when the content type says so (or, without one, when
 * the text is not JSON but looks like k=v pairs); JSON otherwise. Throws SyntaxError when neither.
 */
export function decodeRequestBody(text: string, contentType = ''): { fields: unknown; form: boolean } {
  const looksForm = !/^\s*[{[]/.test(text) && /^[A-Za-z0-9_.%-]+=/.test(text.trim());
  if (contentType.toLowerCase().startsWith(FORM_TYPE) || (!contentType && looksForm)) {
    const fields: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(text.trim())) fields[k] = v;
    return { fields, form: true };
  }
  return { fields: JSON.parse(text) as unknown, form: false };
}

/** The URL a method is posted to: `base` itself, or `base` + the dialect's path for the method. */
export function methodUrl(base: string, method: string, dialect: Pick<Dialect, 'paths'>): URL {
  const url = new URL(base);
  const path = dialect.paths[method];
  if (path) url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
  return url;
}
