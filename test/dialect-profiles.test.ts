/**
 * Dialects as data: every shipped profile and every knob value against vectors made by an
 * independent sealer (test/fixtures/independent-dialect.ts: sm-crypto, written from the schema's
 * descriptions), both directions — what ehc-edge sends equals the independent bytes, and what the
 * independent side sends ehc-edge opens. Plus the loader: schema, names, inline dialects, and the
 * refusal of non-SM algorithms with its reason.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, cpSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { digestInput, digestOf, NATIONAL_V31, resolveDialect, type Dialect } from '../src/protocol/dialect.ts';
import { DIALECTS_DIR, DialectError, loadDialect, shippedDialects } from '../src/protocol/dialect-profiles.ts';
import { openRequest, openResponse, sealRequest, sealResponse, timestampFor } from '../src/protocol/envelope.ts';
import { decodeRequestBody, encodeRequestBody, methodUrl } from '../src/protocol/transport.ts';
import * as ind from './fixtures/independent-dialect.ts';

const SECRET = 'BEE975CC71E21F3FE87DE9F7121DE31F09B93D1AC804A60BBF877C240EBB0FC6';
const APP_KEY = '0123456789ABCDEFFEDCBA9876543210';
const BIZ = { ehealth_code: 'AB:0:CD:3501A0002APPA0001', operator_id: '001', operator_name: '张医生', out_verify_no: '20261126120000000abcdef012345678', out_verify_time: '20261126120000', treatment_code: '010101' };
const IDENTITY = { user_name: '陈俊海', id_no: '350322199008207715', extra: JSON.stringify({ fzxmc0: '省医保中心' }) };
const REQ = { method: 'ehc.ehealthcode.verify', appId: 'app1', termId: 'T1', version: '1.0.0', timestamp: '1764158400000', secret: SECRET };

const NAMES = ['national-v3.1', 'raw-utf8', 'hex-key', 'fixed-key', 'json-digest', 'form-paths', 'plaintext-digest', 'base64-gbk'];

function both(d: Dialect, k: ind.Knobs, label: string) {
  const ours = sealRequest({ ...REQ, biz: BIZ, dialect: d });
  const theirs = ind.sealRequest({ ...REQ, biz: BIZ }, k);
  assert.equal(ours, theirs, `${label}: request bytes equal the independent sealer's`);
  const opened = openRequest(theirs, () => ({ secret: SECRET, dialect: d }));
  assert.equal(opened.biz, BIZ, `${label}: opens the independent request to the national biz`);
  const answer = ind.sealAnswer({ method: REQ.method, appId: 'app1', version: '1.0.0', timestamp: '20261126120001', biz: IDENTITY, secret: SECRET }, k);
  assert.equal(openResponse(answer, { secret: SECRET, dialect: d }).biz, IDENTITY, `${label}: opens the independent answer`);
  const ourAnswer = sealResponse({ retCode: '0000', retMsg: '成功', appId: 'app1', method: REQ.method, version: '1.0.0', timestamp: '20261126120001', biz: IDENTITY, secret: SECRET, dialect: d });
  assert.equal(ourAnswer, answer, `${label}: answer bytes equal the independent sealer's`);
}

test('every shipped profile is valid, named after its file, and national-v3.1 comes first', () => {
  const all = shippedDialects();
  assert.equal([...all.keys()].sort(), [...NAMES].sort());
  assert.is([...all.keys()][0], 'national-v3.1');
  const { description, descriptionZh, ...national } = all.get('national-v3.1')!;
  assert.ok(description);
  for (const d of all.values()) assert.match(d.descriptionZh ?? '', /[\u4e00-\u9fff]/, `${d.name}: a Chinese description (dialect show's default)`);
  assert.equal(national, { ...NATIONAL_V31 });
});

for (const name of NAMES) {
  test(`profile ${name}: byte-equal to the independent sealer both ways (request and answer)`, () => {
    const d = loadDialect(name, name === 'fixed-key' ? { appKey: APP_KEY } : {});
    both(d, ind.profileKnobs(name, name === 'fixed-key' ? { appKey: APP_KEY } : {}), name);
  });
}

const KNOB_VALUES: Array<[string, unknown[]]> = [
  ['key', ['ascii16', 'hex-decoded', 'fixed']],
  ['plaintext', ['raw']],
  ['padding', ['zero']],
  ['encoding', ['base64']],
  ['charset', ['gbk']],
  ['digestRecipe', ['json-text']],
  ['digestOver', ['plaintext']],
  ['emptyFields', ['keep', 'keep-null']],
  ['secretSuffix', ['bare']],
  ['digestCase', ['lower']],
  ['codeField', ['code']],
  ['messageField', ['message']],
  ['success', [['10'], ['200']]],
  ['wrapper', ['data']],
  ['signedAnswers', [false]],
  ['fields', [{ 'ehc.ehealthcode.verify': { treatment_code: 'medstepcode', operator_id: 'terminalcode' } }]],
  ['extraFields', [{ 'ehc.ehealthcode.verify': { channelcode: '01', terminalcode: '{term_id}' } }]],
  ['version', ['V1.1', 'v1.0.0']],
];

for (const [knob, values] of KNOB_VALUES) {
  for (const value of values) {
    test(`knob ${knob}=${JSON.stringify(value)}: byte-equal to the independent sealer, and differs from national`, () => {
      const extra = knob === 'key' && value === 'fixed' ? { appKey: APP_KEY } : {};
      const d = resolveDialect({ [knob]: value } as never, NATIONAL_V31, extra);
      both(d, ind.knobs({ [knob]: value, ...extra }), `${knob}=${JSON.stringify(value)}`);
      const nat = sealRequest({ ...REQ, biz: BIZ });
      const ours = sealRequest({ ...REQ, biz: BIZ, dialect: d });
      const ans = (x: Dialect) => sealResponse({ retCode: '0000', retMsg: '成功', appId: 'app1', method: REQ.method, version: '1.0.0', timestamp: '20261126120001', biz: IDENTITY, secret: SECRET, dialect: x });
      // emptyFields only shows when a field is empty (its own test below)
      if (knob !== 'emptyFields') assert.ok(JSON.stringify(ours) !== JSON.stringify(nat) || JSON.stringify(ans(d)) !== JSON.stringify(ans(NATIONAL_V31)), 'the knob changes what travels');
    });
  }
}

test('emptyFields: keep writes term_id= and keep-null writes null into the digest string (independent digest)', () => {
  const env = { app_id: 'a', biz_content: 'C', method: 'm', term_id: '', timestamp: '1', version: null };
  const digests = (['skip', 'keep', 'keep-null'] as const).map((rule) => resolveDialect({ emptyFields: rule }));
  assert.is(digestInput(env, 'S', digests[0]!), 'app_id=a&biz_content=C&method=m&timestamp=1&app_secret=S');
  assert.is(digestInput(env, 'S', digests[1]!), 'app_id=a&biz_content=C&method=m&term_id=&timestamp=1&app_secret=S');
  assert.is(digestInput(env, 'S', digests[2]!), 'app_id=a&biz_content=C&method=m&term_id=&timestamp=1&version=null&app_secret=S');
  for (const [i, rule] of (['skip', 'keep', 'keep-null'] as const).entries()) assert.is(digestOf(env, 'S', digests[i]!), ind.digest(env, 'S', ind.knobs({ emptyFields: rule })));
});

test('timestamp forms: ms since epoch (national) and yyyyMMddHHmmss in CST', () => {
  const at = new Date(Date.UTC(2026, 11, 1, 16, 30, 5)); // 2026-12-02 00:30:05 CST
  assert.is(timestampFor(NATIONAL_V31, at), String(at.getTime()));
  assert.is(timestampFor(resolveDialect({ timestamp: 'yyyyMMddHHmmss' }), at), '20261202003005');
  const env = sealRequest({ ...REQ, timestamp: undefined, biz: BIZ, dialect: resolveDialect({ timestamp: 'yyyyMMddHHmmss' }) });
  assert.match(env.timestamp, /^20\d{12}$/);
});

test('transport: form bodies keep every field; per-method paths are appended to the configured URL', () => {
  const d = loadDialect('form-paths');
  const env = sealRequest({ ...REQ, biz: BIZ, dialect: d });
  const body = encodeRequestBody(env, d);
  assert.match(body.contentType, /^application\/x-www-form-urlencoded/);
  assert.equal(new URLSearchParams(body.payload).get('biz_content'), env.biz_content);
  const back = decodeRequestBody(body.payload, body.contentType);
  assert.ok(back.form);
  assert.equal(back.fields, env);
  assert.equal(decodeRequestBody(body.payload).fields, env, 'recognised as form without a content type');
  assert.equal(decodeRequestBody(JSON.stringify(env)).fields, env);
  assert.is(methodUrl('https://ehc.example:8443/erhc/', 'ehc.ehealthcode.verify', d).toString(), 'https://ehc.example:8443/erhc/user/verify');
  assert.is(methodUrl('https://ehc.example/erhc', 'ehc.ehealthcode.verify', NATIONAL_V31).toString(), 'https://ehc.example/erhc');
});

test('national-v3.1 by name, by default, and as {} are the same national reading', () => {
  const knobsOf = ({ description: _d, descriptionZh: _z, ...rest }: Dialect) => rest;
  assert.equal(knobsOf(loadDialect(undefined)), { ...NATIONAL_V31 });
  assert.equal(knobsOf(loadDialect('national-v3.1')), { ...NATIONAL_V31 });
  assert.equal(loadDialect({}), { ...NATIONAL_V31 });
  const inline = loadDialect({ base: 'raw-utf8', digestCase: 'lower' });
  assert.is(inline.plaintext, 'raw');
  assert.is(inline.digestCase, 'lower');
  assert.is(inline.name, 'raw-utf8+digestCase=lower');
});

function refusal(spec: unknown): DialectError {
  try {
    loadDialect(spec as never);
  } catch (err) {
    if (err instanceof DialectError) return err;
    throw err;
  }
  throw new Error('accepted');
}

test('non-SM algorithms are refused with the reason (密评 requires SM2/SM3/SM4)', () => {
  for (const [k, v] of [['encType', 'AES'], ['digestType', 'MD5'], ['digestType', 'SHA-256'], ['cipher', 'AES/ECB/PKCS5Padding']] as Array<[string, string]>) {
    const e = refusal({ [k]: v });
    assert.match(e.message, `upstream.dialect: ${k}`);
    assert.match(e.message, '密评');
    assert.match(e.message, 'SM2/SM3/SM4');
  }
});

test('the loader names the key and what to fix', () => {
  assert.match(refusal('no-such').message, /upstream\.dialect: no dialect "no-such"; shipped: national-v3\.1, /);
  assert.match(refusal({ padding: 'iso10126' }).message, 'upstream.dialect: padding: must be equal to one of the allowed values: pkcs7, zero');
  assert.match(refusal({ paddng: 'zero' }).message, 'upstream.dialect: paddng: unknown knob');
  assert.match(refusal({ base: 'nope' }).message, 'upstream.dialect.base: no dialect "nope"');
  assert.match(refusal('fixed-key').message, 'set upstream.appKey');
});

test('a profile file is checked: name must match the file, base is for inline dialects only', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ehc-dialects-'));
  try {
    cpSync(path.join(DIALECTS_DIR, 'dialect.schema.json'), path.join(dir, 'dialect.schema.json'));
    writeFileSync(path.join(dir, 'x-one.json'), JSON.stringify({ name: 'x-two' }));
    assert.throws(() => shippedDialects(dir), (e: Error) => e.message === 'dialects/x-one.json: name: must be "x-one" (the file name)');
    writeFileSync(path.join(dir, 'x-one.json'), JSON.stringify({ name: 'x-one', base: 'raw-utf8' }));
    assert.throws(() => shippedDialects(dir), (e: Error) => /base is for inline dialects/.test(e.message));
    writeFileSync(path.join(dir, 'x-one.json'), JSON.stringify({ name: 'x-one', digestType: 'SHA-256' }));
    assert.throws(() => shippedDialects(dir), (e: Error) => /dialects\/x-one\.json: digestType: SHA-256 is not supported: 密评/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
