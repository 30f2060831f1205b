/**
 * One test per dialect knob: each changes the bytes exactly as described and still round-trips
 * (seal → open) when both sides use the same dialect, and fails closed (9003/9007) when they differ.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createDecipheriv, createHash } from 'node:crypto';
import iconv from 'iconv-lite';
import { decryptBiz, digestInput, encryptBiz, messageKey, NATIONAL_V31, resolveDialect, type Dialect } from '../src/protocol/dialect.ts';
import { openRequest, openResponse, sealRequest, sealResponse } from '../src/protocol/envelope.ts';
import { EhcError } from '../src/errors.ts';

const SECRET = 'BEE975CC71E21F3FE87DE9F7121DE31F09B93D1AC804A60BBF877C240EBB0FC6';
const BIZ = { ehealth_code: 'AB:0:CD:3501A0002APPA0001', operator_id: '001', operator_name: '张医生', out_verify_no: '20261126120000000abcdef012345678', out_verify_time: '20261126120000', treatment_code: '010101' };
const IDENTITY = { user_name: '陈俊海', id_no: '350322199008207715', extra: JSON.stringify({ fzxmc0: '省医保中心' }) };

function rawDecrypt(ct: Buffer, key: Buffer): Buffer {
  const d = createDecipheriv('sm4-ecb', key, null);
  d.setAutoPadding(false);
  return Buffer.concat([d.update(ct), d.final()]);
}

function seal(dialect: Dialect, biz: Record<string, unknown> = BIZ) {
  return sealRequest({ method: 'ehc.ehealthcode.verify', appId: 'app1', termId: 'T1', version: '1.0.0', timestamp: '1764158400000', biz, secret: SECRET, dialect });
}

function roundTrip(dialect: Dialect) {
  const env = seal(dialect);
  const opened = openRequest(env, () => ({ secret: SECRET, dialect }));
  assert.equal(opened.biz, BIZ);
  const resp = sealResponse({ retCode: '0000', retMsg: '交易成功', appId: 'app1', method: env.method, version: '1.0.0', biz: IDENTITY, secret: SECRET, dialect });
  assert.equal(openResponse(resp, { secret: SECRET, dialect }).biz, IDENTITY);
  // the other side speaking the national reading does not accept it
  let code = '';
  try {
    openResponse(resp, { secret: SECRET, dialect: NATIONAL_V31 });
  } catch (err) {
    code = (err as EhcError).code;
  }
  assert.ok(code === '9003' || code === '9007', `national reading must reject a ${dialect.name} answer, got ${code || 'success'}`);
  return env;
}

const national = () => seal(NATIONAL_V31);

test('resolveDialect: {} is the national V3.1 reading; changed knobs are named', () => {
  assert.equal(resolveDialect({}), { ...NATIONAL_V31 });
  assert.equal(resolveDialect(undefined), { ...NATIONAL_V31 });
  assert.is(resolveDialect({ encoding: 'base64', padding: 'zero' }).name, 'national-v3.1+padding=zero,encoding=base64');
  assert.is(resolveDialect({ name: 'xm-2019', encoding: 'base64' }).name, 'xm-2019');
});

test('digestOver=plaintext: same ciphertext, digest taken with biz_content = the JSON text', () => {
  const d = resolveDialect({ digestOver: 'plaintext' });
  const env = roundTrip(d);
  const nat = national();
  assert.is(env.biz_content, nat.biz_content);
  assert.is.not(env.digest, nat.digest);
  const input = digestInput({ ...env, biz_content: JSON.stringify(BIZ) }, SECRET, NATIONAL_V31);
  assert.is(env.digest, createHash('sm3').update(input, 'utf8').digest('hex').toUpperCase());
});

test('encoding=base64: the same ciphertext bytes in Base64', () => {
  const d = resolveDialect({ encoding: 'base64' });
  const env = roundTrip(d);
  assert.is(env.biz_content, Buffer.from(national().biz_content, 'hex').toString('base64'));
  assert.match(env.biz_content, /^[A-Za-z0-9+/]+=*$/);
});

test('charset=gbk: JSON text and digest string encoded as GBK', () => {
  const d = resolveDialect({ charset: 'gbk' });
  const env = roundTrip(d);
  const hexText = rawDecrypt(Buffer.from(env.biz_content, 'hex'), messageKey(SECRET, d)).toString('latin1');
  assert.ok(hexText.includes(iconv.encode('张医生', 'gbk').toString('hex').toUpperCase()), 'GBK bytes of 张医生 (D5C5D2BDC9FA)');
  assert.not.ok(hexText.includes(Buffer.from('张医生', 'utf8').toString('hex').toUpperCase()));
  // the request digest string is ASCII; a response's ret_msg is not
  const resp = sealResponse({ retCode: '0000', retMsg: '交易成功', appId: 'app1', method: env.method, version: '1.0.0', biz: IDENTITY, secret: SECRET, dialect: d });
  const input = digestInput(resp, SECRET, d);
  assert.ok(input.includes('ret_msg=交易成功'));
  assert.is(resp.digest, createHash('sm3').update(iconv.encode(input, 'gbk')).digest('hex').toUpperCase());
  assert.is.not(resp.digest, createHash('sm3').update(input, 'utf8').digest('hex').toUpperCase());
});

test('padding=zero: 0x00 up to the block, no extra block when aligned', () => {
  const d = resolveDialect({ padding: 'zero' });
  roundTrip(d);
  const key = messageKey(SECRET, d);
  // 8-char JSON → 16-char hex text: exactly one block, national PKCS#7 adds a second
  const aligned = encryptBiz('{"a":1}', SECRET, d); // 7 chars → 14 hex chars → padded with two zero bytes
  assert.is(aligned.length, 32);
  assert.equal([...rawDecrypt(Buffer.from(aligned, 'hex'), key).subarray(14)], [0, 0]);
  const exact = encryptBiz('{"ab":1}', SECRET, d); // 8 chars → 16 hex chars: one block, no padding
  assert.is(exact.length, 32);
  assert.is(encryptBiz('{"ab":1}', SECRET, NATIONAL_V31).length, 64);
  assert.is(decryptBiz(exact, SECRET, d), '{"ab":1}');
});

test('key=ascii16: the secret’s own first 16 ASCII bytes are the key', () => {
  const d = resolveDialect({ key: 'ascii16' });
  assert.is(messageKey(SECRET, d).toString('latin1'), 'BEE975CC71E21F3F');
  const env = roundTrip(d);
  const hexText = rawDecrypt(Buffer.from(env.biz_content, 'hex'), Buffer.from('BEE975CC71E21F3F', 'latin1')).toString('latin1');
  assert.ok(hexText.startsWith(Buffer.from('{"ehealth_code"', 'utf8').toString('hex').toUpperCase()));
  assert.is.not(env.biz_content, national().biz_content);
});

test('secretSuffix=bare: the secret appended without &app_secret=', () => {
  const d = resolveDialect({ secretSuffix: 'bare' });
  const env = roundTrip(d);
  const input = digestInput(env, SECRET, d);
  assert.ok(input.endsWith('&version=1.0.0' + SECRET));
  assert.not.ok(input.includes('app_secret='));
  assert.is(env.digest, createHash('sm3').update(input).digest('hex').toUpperCase());
  assert.is(env.biz_content, national().biz_content);
});

test('failure answers: no body; unsigned only for protocol-field codes', () => {
  const signed = sealResponse({ retCode: '2001', retMsg: '二维码已过期', appId: 'app1', method: 'ehc.ehealthcode.verify', version: '1.0.0', secret: SECRET });
  assert.is(signed.biz_content, undefined);
  try {
    openResponse(signed, { secret: SECRET });
    assert.unreachable();
  } catch (err) {
    assert.is((err as EhcError).code, '2001');
    assert.match((err as Error).message, '二维码已过期');
  }
  const unsigned1008 = sealResponse({ retCode: '1008', retMsg: 'app unknown', appId: 'x', method: 'm', version: '1.0.0' });
  assert.is(unsigned1008.digest, undefined);
  assert.throws(() => openResponse(unsigned1008, { secret: SECRET }), (e: EhcError) => e.code === '1008');
  // an unsigned 3002 could make the outbox drop a record: never trusted
  const unsigned3002 = sealResponse({ retCode: '3002', retMsg: 'dup', appId: 'x', method: 'm', version: '1.0.0' });
  assert.throws(() => openResponse(unsigned3002, { secret: SECRET }), (e: EhcError) => e.code === '9003');
  assert.throws(() => openResponse('nope', { secret: SECRET }), (e: EhcError) => e.code === '9008');
});

test.run();
