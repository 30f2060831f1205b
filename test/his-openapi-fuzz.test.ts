/**
 * The contract kept by a tool: a property-based tester driven by the SERVED /v1/openapi.json (the
 * independent side: it knows the port only through the document). For every operation it generates
 * schema-valid requests and invalid ones (no/unknown/malformed key, values outside the parameter
 * schemas, missing, broken or wrongly typed bodies, non-ASCII path segments), sends them to a real
 * appliance (startAppliance on port 0, real HTTP) and checks each answer: its status is listed for the
 * operation, its content type and JSON body match the documented response, and a schema-valid request
 * with the right key is never refused as malformed (400). Methods a path does not serve must answer
 * 405 with Allow. schemathesis would be the off-the-shelf tool; PyPI is not reachable here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import fc from 'fast-check';
import AjvModule from 'ajv';
import { API_KEY, testAppliance } from './helpers/appliance.ts';
import { requestFrom } from './helpers/from-address.ts';

const ADMIN_KEY = 'fuzz-admin-key-0000000000001';

const Ajv = AjvModule as unknown as typeof AjvModule.default;

type Schema = Record<string, any>;
interface Operation {
  path: string;
  method: string;
  op: { security?: unknown[]; parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Schema }>; requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> }; responses: Record<string, { content?: Record<string, { schema?: Schema }> }> };
}
interface Generated {
  valid: boolean;
  auth: string | undefined;
  pathParams: Record<string, string>;
  query: Array<[string, string]>;
  headers: Record<string, string>;
  body?: { contentType: string; text: string };
  why: string;
}

const RUNS = Number(process.env.EHC_FUZZ_RUNS ?? 40);
const OTHER_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'];

function resolve(doc: Schema, schema: Schema | undefined): Schema {
  let s = schema ?? {};
  while (s.$ref) s = s.$ref.slice(2).split('/').reduce((o: Schema, k: string) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
  return s;
}

/** A value valid for a JSON schema (the subset the document uses). */
function valueOf(doc: Schema, schema: Schema | undefined): fc.Arbitrary<unknown> {
  const s = resolve(doc, schema);
  if ('const' in s) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  switch (s.type) {
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(valueOf(doc, s.items), { minLength: s.minItems ?? 0, maxLength: Math.min(s.maxItems ?? 10, 10) });
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6 });
    case 'string':
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern));
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 80), unit: 'grapheme' });
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const model = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, valueOf(doc, v)]));
      return fc.record(model, { requiredKeys: (s.required ?? []) as string[] });
    }
    default:
      return fc.anything();
  }
}

/** A value a parameter's schema does not admit (or may: arbitrary text, which is also what clients send). */
const junk = fc.oneof(fc.constant(''), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.constantFrom('-1', '0', '1e3', '99999999999', '中文', '%', ' 1', 'null'));

function requestsFor(doc: Schema, o: Operation): fc.Arbitrary<Generated> {
  const params = o.op.parameters ?? [];
  const validParams = fc.record(
    Object.fromEntries(params.map((p) => [p.name, p.required ? valueOf(doc, p.schema).map(String) : fc.option(valueOf(doc, p.schema).map(String), { nil: undefined })])),
  ) as fc.Arbitrary<Record<string, string | undefined>>;
  const media = o.op.requestBody ? Object.keys(o.op.requestBody.content)[0]! : undefined;
  const validBody = media ? valueOf(doc, o.op.requestBody!.content[media]!.schema).map((v) => ({ contentType: media, text: JSON.stringify(v) })) : fc.constant(undefined);
  const build = (values: Record<string, string | undefined>, body: Generated['body'], auth: string | undefined, valid: boolean, why: string): Generated => {
    const g: Generated = { valid, auth, pathParams: {}, query: [], headers: {}, body, why };
    for (const p of params) {
      const v = values[p.name];
      if (v === undefined) continue;
      if (p.in === 'path') g.pathParams[p.name] = v;
      else if (p.in === 'query') g.query.push([p.name, v]);
      else if (p.in === 'header') g.headers[p.name] = v.replace(/[^\x20-\x7e]/g, '');
    }
    return g;
  };
  // the key of the operation's scheme: admin routes take an admin key (the HIS key is one of the wrong ones)
  const admin = o.op.security?.some((s) => Object.hasOwn(s as object, 'adminKey'));
  const rightKey = `Bearer ${admin ? ADMIN_KEY : API_KEY}`;
  const valid = fc.tuple(validParams, validBody).map(([v, b]) => build(v, b, o.op.security?.length ? rightKey : undefined, true, 'valid'));
  const badAuth = fc.tuple(validParams, validBody, fc.constantFrom(undefined, 'Bearer wrong-key-0000000000000', ...(admin ? [`Bearer ${API_KEY}`] : []), 'Bearer a b c', 'Basic Zm9vOmJhcg==', 'Bearer', `bearer ${API_KEY}x`)).map(([v, b, a]) => build(v, b, a, false, 'auth'));
  const badParam = params.length
    ? fc.tuple(validParams, fc.constantFrom(...params.map((p) => p.name)), junk, validBody).map(([v, name, j, b]) => {
        const g = build({ ...v, [name]: j }, b, rightKey, false, `param ${name}`);
        const p = params.find((x) => x.name === name)!;
        if (p.in === 'path' && j === '') g.pathParams[name] = '%20';
        return g;
      })
    : undefined;
  const badBody = media
    ? fc.tuple(validParams, fc.oneof(
        fc.constant(undefined),
        fc.constant({ contentType: media, text: '' }),
        fc.constant({ contentType: media, text: '{"unterminated": ' }),
        fc.anything().map((v) => ({ contentType: media, text: JSON.stringify(v) ?? 'null' })),
        fc.constantFrom('application/json-seq', 'text/plain', 'application/x-www-form-urlencoded').map((t) => ({ contentType: t, text: '{}' })),
      )).map(([v, b]) => build(v, b, rightKey, false, 'body'))
    : undefined;
  return fc.oneof(...[valid, valid, badAuth, badParam, badBody].filter((a): a is fc.Arbitrary<Generated> => a !== undefined));
}

function urlOf(base: string, o: Operation, g: Generated): string {
  const path = o.path.replace(/\{([^}]+)\}/g, (_, name: string) => (g.pathParams[name] === '%20' ? '%20' : encodeURIComponent(g.pathParams[name] ?? 'x')));
  const qs = new URLSearchParams(g.query).toString();
  return `${base}${path}${qs ? `?${qs}` : ''}`;
}

async function send(base: string, o: Operation, g: Generated): Promise<{ status: number; type: string; body: string; allow: string | null }> {
  const ac = new AbortController();
  const headers: Record<string, string> = { ...g.headers };
  if (g.auth !== undefined) headers.authorization = g.auth;
  if (g.body) headers['content-type'] = g.body.contentType;
  const res = await fetch(urlOf(base, o, g), { method: o.method.toUpperCase(), headers, body: g.body?.text, signal: ac.signal });
  const type = res.headers.get('content-type') ?? '';
  let body = '';
  // a stream (the scan stream) never ends: its status and type are the answer
  if (type.startsWith('text/event-stream')) ac.abort();
  else body = await res.text();
  return { status: res.status, type, body, allow: res.headers.get('allow') };
}

test('every answer of the real appliance to generated valid and invalid requests is in the served OpenAPI document', async () => {
  const t = await testAppliance((doc) => {
    doc.his.authThrottle = { maxFailures: 10_000, windowSeconds: 60, globalMaxFailures: 1_000_000 };
    // the admin routes are driven with a real admin key; its lockout would otherwise answer most of them 429
    doc.admin = { apiKeys: [ADMIN_KEY], maxFailedAttempts: 100_000 };
  });
  try {
    const doc = (await (await fetch(`${t.appliance.url}/v1/openapi.json`)).json()) as Schema;
    const ajv = new Ajv({ strict: false, validateSchema: false, validateFormats: false, allErrors: false });
    ajv.addSchema(doc, 'openapi');
    const operations: Operation[] = Object.entries(doc.paths as Record<string, Record<string, Operation['op']>>).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
    assert.ok(operations.length >= 15, `${operations.length} operations`);
    const problems: string[] = [];
    let requests = 0;
    for (const o of operations) {
      const id = `${o.method.toUpperCase()} ${o.path}`;
      await fc.assert(
        fc.asyncProperty(requestsFor(doc, o), async (g) => {
          requests++;
          const r = await send(t.appliance.url, o, g);
          const documented = o.op.responses[String(r.status)] ?? o.op.responses.default;
          const where = `${id} (${g.why}: ${urlOf('', o, g)} ${g.body ? `${g.body.contentType} ${g.body.text.slice(0, 60)}` : ''})`;
          if (!documented) return void problems.push(`${where} → ${r.status} not in the document ${r.body.slice(0, 120)}`);
          if (g.valid && r.status === 400) problems.push(`${where} → 400 for a schema-valid request: ${r.body.slice(0, 160)}`);
          if (r.status >= 500 && r.status !== 503 && !o.op.responses[String(r.status)]) problems.push(`${where} → ${r.status}`);
          const content = documented.content;
          if (!content) return;
          const mediaType = Object.keys(content).find((m) => r.type.split(';')[0]!.trim() === m);
          if (!mediaType) return void problems.push(`${where} → ${r.status} with Content-Type ${r.type}, documented ${Object.keys(content).join(', ')}`);
          if (mediaType !== 'application/json') return;
          const pointer = `openapi#/paths/${o.path.replace(/~/g, '~0').replace(/\//g, '~1')}/${o.method}/responses/${o.op.responses[String(r.status)] ? r.status : 'default'}/content/application~1json/schema`;
          const validate = ajv.getSchema(pointer) ?? ajv.compile({ $ref: pointer });
          let body: unknown;
          try {
            body = JSON.parse(r.body);
          } catch {
            return void problems.push(`${where} → ${r.status}: not JSON`);
          }
          if (!validate(body)) problems.push(`${where} → ${r.status}: body not as documented (${ajv.errorsText(validate.errors)}): ${r.body.slice(0, 120)}`);
        }),
        { numRuns: RUNS, seed: Number(process.env.EHC_FUZZ_SEED ?? Date.now() % 2 ** 31) },
      );
      // methods the path does not serve: 405 with Allow, never 404 or 2xx
      const served = Object.keys(doc.paths[o.path]).map((m) => m.toUpperCase());
      for (const m of OTHER_METHODS.filter((x) => !served.includes(x) && !(x === 'HEAD'))) {
        if (m === 'GET' && served.includes('HEAD')) continue;
        // node:http, not fetch: fetch refuses TRACE
        const r = await requestFrom(urlOf(t.appliance.url, o, { valid: false, auth: undefined, pathParams: {}, query: [], headers: {}, why: 'method' }), { method: m, headers: { authorization: `Bearer ${API_KEY}` } });
        requests++;
        if (r.status !== 405 || !r.headers.allow) problems.push(`${m} ${o.path} → ${r.status} (Allow: ${r.headers.allow}); expected 405 with Allow`);
      }
    }
    assert.ok(requests > operations.length * RUNS, `${requests} requests`);
    assert.equal(problems.slice(0, 25), [], `${problems.length} answers outside the document (of ${requests} requests)`);
    assert.not.ok(t.log.lines.some((l) => /"level":"error"/.test(l)), t.log.lines.filter((l) => /"level":"error"/.test(l)).slice(0, 3).join('\n'));
  } finally {
    await t.stop();
  }
});

test('a client that aborts mid-body is not an error on the HIS port; application/json-seq is not JSON', async () => {
  const t = await testAppliance();
  try {
    const port = Number(new URL(t.appliance.url).port);
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port }, () => {
          s.write(`POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{"ehealth_code":"`);
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 30);
        });
      });
    }
    // application/json-seq is not application/json
    const seq = await t.post({ ehealth_code: 'x' }).then(async () => fetch(`${t.appliance.url}/v1/verify`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json-seq' }, body: '{"ehealth_code":"x"}' }));
    assert.is(seq.status, 400);
    assert.match(((await seq.json()) as { ret_msg: string }).ret_msg, /Content-Type/);
    const ok = await fetch(`${t.appliance.url}/v1/health`);
    assert.is(ok.status, 200);
    await new Promise((r) => setTimeout(r, 100));
    const errors = t.log.lines.filter((l) => /"level":"error"/.test(l));
    assert.equal(errors, []);
  } finally {
    await t.stop();
  }
});

test.run();
