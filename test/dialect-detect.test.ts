/**
 * The dialect finder: it names the right profile for a sample sealed by each shipped profile (sealed by
 * the independent sealer, not by ehc-edge) and for the seed's worked example; says "no dialect
 * reproduces this" with the nearest miss otherwise, and finds the inline knobs when a combination
 * does reproduce it. Also the CLI: `ehc-edge dialect detect|show|seal|open`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { detectDialect } from '../src/protocol/dialect-detect.ts';
import { shippedDialects } from '../src/protocol/dialect-profiles.ts';
import { main } from '../tools/dialect.ts';
import * as ind from './fixtures/independent-dialect.ts';
import { tempDir } from './helpers/tmp.ts';

const SECRET = 'BEE975CC71E21F3FE87DE9F7121DE31F09B93D1AC804A60BBF877C240EBB0FC6';
const APP_KEY = '0123456789ABCDEFFEDCBA9876543210';
const BIZ = { ehealth_code: 'AB:0:CD:3501A0002APPA0001', operator_id: '001', operator_name: '张医生', out_verify_no: '20261126120000000abcdef012345678', out_verify_time: '20261126120000', treatment_code: '010101' };
const SEED_REQUEST = JSON.parse(readFileSync('dialects/samples/seed-request.json', 'utf8')) as Record<string, unknown>;
const SEED_RESPONSE = JSON.parse(readFileSync('dialects/samples/seed-response.json', 'utf8')) as Record<string, unknown>;
const tmp = tempDir('ehc-dialect-detect-');

function sample(k: ind.Knobs): Record<string, string> {
  const ts = k.timestamp === 'yyyyMMddHHmmss' ? '20261126120000' : '1764158400000';
  return ind.sealRequest({ method: 'ehc.ehealthcode.verify', appId: 'app1', termId: '3502A0001STMA0001', version: '1.0.0', timestamp: ts, biz: BIZ, secret: SECRET }, k);
}

for (const name of shippedDialects().keys()) {
  test(`detect names ${name} for a sample the independent sealer made in it`, () => {
    const k = ind.profileKnobs(name, name === 'fixed-key' ? { appKey: APP_KEY } : {});
    const r = detectDialect({ request: sample(k), form: k.body === 'form', secret: SECRET, appKey: APP_KEY });
    assert.equal(r.matches, [name]);
  });
}

test("detect names national-v3.1 for the seed's worked example, request and answer", () => {
  const r = detectDialect({ request: SEED_REQUEST, secret: SECRET, response: SEED_RESPONSE });
  assert.equal(r.matches, ['national-v3.1']);
  const v = r.verdicts[0]!;
  assert.equal(v.failed, []);
  assert.is(v.biz?.out_verify_no, '495a8f3e994f41718b60b7f692fa37af');
});

test('no dialect reproduces a sample in an unshipped combination: nearest miss named, the inline knobs found', () => {
  const r = detectDialect({ request: sample(ind.knobs({ plaintext: 'raw', secretSuffix: 'bare' })), secret: SECRET });
  assert.equal(r.matches, []);
  assert.is(r.nearest?.name, 'raw-utf8');
  assert.equal(r.nearest?.failed.map((f) => f.check), ['digest']);
  assert.equal(r.inline, { base: 'raw-utf8', secretSuffix: 'bare' });
  // sorted pairs + bare + lower case is json-digest's digest but for the recipe: that is the nearest
  const r2 = detectDialect({ request: sample(ind.knobs({ plaintext: 'raw', secretSuffix: 'bare', digestCase: 'lower' })), secret: SECRET });
  assert.is(r2.nearest?.name, 'json-digest');
  assert.equal(r2.inline, { base: 'json-digest', digestRecipe: 'sorted-pairs' });
});

test('a sample under another secret: nothing reproduces it and no knobs are offered', () => {
  const r = detectDialect({ request: sample(ind.knobs({})), secret: 'F'.repeat(64) });
  assert.equal(r.matches, []);
  assert.ok(r.nearest);
  assert.ok(r.nearest!.failed.some((f) => f.check === 'decrypt'));
  assert.is(r.inline, undefined);
});

test('answers tell apart dialects whose requests are the same: a code/message answer is not national', () => {
  const k = ind.knobs({ key: 'hex-decoded', plaintext: 'raw' }); // hex-key's request side
  const answer = ind.sealAnswer({ method: 'ehc.ehealthcode.verify', appId: 'app1', version: '1.0.0', timestamp: '20261126120001', biz: { id_no: '1' }, secret: SECRET }, ind.knobs({ key: 'hex-decoded', plaintext: 'raw', codeField: 'ret_code', messageField: 'ret_msg' }));
  const r = detectDialect({ request: sample(k), secret: SECRET, response: answer });
  assert.equal(r.matches, []);
  assert.is(r.nearest?.name, 'hex-key');
  assert.equal(r.nearest?.failed.map((f) => f.check), ['answer']);
});

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  console.error = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    const code = await main(args);
    return { code, out: lines.join('\n') };
  } finally {
    console.log = log;
    console.error = err;
  }
}

test('CLI: detect, show, seal and open', async () => {
  const seed = await cli(['detect', '--secret', SECRET, '--request', 'dialects/samples/seed-request.json', '--response', 'dialects/samples/seed-response.json', '--lang', 'en']);
  assert.is(seed.code, 0);
  assert.match(seed.out, /^dialect: national-v3\.1$/m);

  const formFile = path.join(tmp.dir, 'form.txt');
  const formSample = sample(ind.profileKnobs('form-paths'));
  writeFileSync(formFile, new URLSearchParams(formSample).toString());
  const form = await cli(['detect', '--secret', SECRET, '--request', formFile, '--lang', 'en']);
  assert.is(form.code, 0, form.out);
  assert.match(form.out, /^dialect: form-paths$/m);

  const oddFile = path.join(tmp.dir, 'odd.json');
  writeFileSync(oddFile, JSON.stringify(sample(ind.knobs({ plaintext: 'raw', secretSuffix: 'bare' }))));
  const odd = await cli(['detect', '--secret', SECRET, '--request', oddFile, '--lang', 'en']);
  assert.is(odd.code, 1);
  assert.match(odd.out, /^no dialect reproduces this$/m);
  assert.match(odd.out, /^nearest miss: raw-utf8 \(reproduces decrypt, body, timestamp, version, fields\)$/m);
  assert.match(odd.out, /"upstream.dialect": \{"base":"raw-utf8","secretSuffix":"bare"\}/);

  const show = await cli(['show', 'form-paths', '--lang', 'en']);
  assert.is(show.code, 0);
  assert.match(show.out, /body +"form" +\(national: "json"\)/);
  assert.is((await cli(['show', 'nope'])).code, 2);

  const sealed = await cli(['seal', 'raw-utf8', '--secret', SECRET, '--biz', JSON.stringify(BIZ), '--app-id', 'app1', '--term-id', '3502A0001STMA0001', '--timestamp', '1764158400000']);
  assert.is(sealed.code, 0);
  assert.equal(JSON.parse(sealed.out), sample(ind.profileKnobs('raw-utf8')), 'seal gives the independent bytes');
  const sealedFile = path.join(tmp.dir, 'sealed.json');
  writeFileSync(sealedFile, sealed.out);
  const opened = await cli(['open', 'raw-utf8', '--secret', SECRET, '--request', sealedFile, '--json']);
  assert.is(opened.code, 0);
  assert.equal(JSON.parse(opened.out).biz, BIZ);
  const wrong = await cli(['open', 'national-v3.1', '--secret', SECRET, '--request', sealedFile, '--lang', 'en']);
  assert.is(wrong.code, 1);
  assert.match(wrong.out, /9007 biz_content does not decrypt/);
});

test.after(() => tmp.cleanup());

test.run();
