import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  EhcError,
  asEhcError,
  isReturnCode,
  RETURN_CODES,
  BadRequestError,
  CardError,
  ScannerError,
  UpstreamAnswerError,
  UpstreamConnectError,
  UpstreamConnectTimeoutError,
  UpstreamTimeoutError,
  UpstreamTlsError,
  UpstreamTransferError,
  UpstreamUnreachableError,
} from '../src/errors.ts';
import { httpStatusFor } from '../src/his/http-status.ts';
import { classifyError } from '../src/store/replay.ts';
import { mapNetworkError } from '../src/protocol/http-upstream.ts';

test('every return code of 附录A §5 is known, and only those', () => {
  assert.is(Object.keys(RETURN_CODES).length, 38);
  for (const code of ['0000', '2001', '2002', '2003', '2004', '3002', '8004', '8008', '9003']) assert.ok(isReturnCode(code), code);
  assert.not.ok(isReturnCode('1234'));
  assert.not.ok(isReturnCode(2001));
});

test('asEhcError keeps an EhcError and wraps anything else with the fallback code', () => {
  const original = new EhcError('2002', 'bad code');
  assert.is(asEhcError(original), original);
  const wrapped = asEhcError(new Error('boom'), '8008', 'card');
  assert.is(wrapped.code, '8008');
  assert.is(wrapped.message, 'card: boom');
  assert.equal(wrapped.toJSON(), { ret_code: '8008', ret_msg: 'card: boom' });
});

test('error classes: one kind each with a stable code, each carrying the wire return code it maps to', () => {
  const cases: Array<[EhcError, string, string]> = [
    [new BadRequestError('x'), 'EHC_ERR_BAD_REQUEST', '9001'],
    [new UpstreamConnectError('x'), 'EHC_ERR_UPSTREAM_CONNECT', '8004'],
    [new UpstreamConnectTimeoutError('x'), 'EHC_ERR_UPSTREAM_CONNECT_TIMEOUT', '8004'],
    [new UpstreamTlsError('x'), 'EHC_ERR_UPSTREAM_TLS', '8004'],
    [new UpstreamTimeoutError('x'), 'EHC_ERR_UPSTREAM_TIMEOUT', '8001'],
    [new UpstreamTransferError('x'), 'EHC_ERR_UPSTREAM_TRANSFER', '8002'],
    [new UpstreamAnswerError('2001', 'x'), 'EHC_ERR_UPSTREAM_ANSWER', '2001'],
    [new UpstreamAnswerError('7777', 'x'), 'EHC_ERR_UPSTREAM_ANSWER', '9999'],
    [new CardError('x'), 'EHC_ERR_CARD', '8008'],
    [new ScannerError('x'), 'EHC_ERR_SCANNER', '8009'],
    [new EhcError('2002', 'x'), 'EHC_ERR_RETURN_CODE', '2002'],
  ];
  for (const [e, kind, code] of cases) {
    assert.instance(e, EhcError);
    assert.is(e.kind, kind);
    assert.is(e.code, code, kind);
    assert.equal(e.toJSON(), { ret_code: code, ret_msg: 'x' });
  }
  assert.is(new UpstreamConnectTimeoutError('x').name, 'UpstreamConnectTimeoutError');
  assert.instance(new UpstreamTlsError('x'), UpstreamUnreachableError);
});

test('a refused connection and a connect timeout are two kinds (both 8004 on the wire); TLS and mid-transfer breaks too', () => {
  const refused = mapNetworkError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), false, 'h:1');
  assert.instance(refused, UpstreamConnectError);
  assert.is(refused.code, '8004');
  assert.instance(mapNetworkError(Object.assign(new Error('bad cert'), { code: 'CERT_HAS_EXPIRED' }), false, 'h:1'), UpstreamTlsError);
  assert.instance(mapNetworkError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), true, 'h:1'), UpstreamTransferError);
  assert.not.instance(refused, UpstreamConnectTimeoutError);
});

test('HTTP status switches on the class: unreachable home system or card → 503, bad request → 400, a home refusal by its code', () => {
  assert.is(httpStatusFor(new UpstreamConnectTimeoutError('x')), 503);
  assert.is(httpStatusFor(new UpstreamTimeoutError('x')), 503);
  assert.is(httpStatusFor(new CardError('x')), 503);
  assert.is(httpStatusFor(new BadRequestError('x')), 400);
  assert.is(httpStatusFor(new UpstreamAnswerError('2001', 'x')), 422);
  assert.is(httpStatusFor(new UpstreamAnswerError('9003', 'x')), 502);
  assert.is(httpStatusFor(new EhcError('2002', 'x')), 422, 'a bare EhcError by its code');
});

test('replay classification switches on the class: unreachable → retry, a home answer by its code, a request we cannot build → dead', () => {
  assert.is(classifyError(new UpstreamConnectError('x')), 'retry');
  assert.is(classifyError(new UpstreamTimeoutError('x')), 'retry');
  assert.is(classifyError(new UpstreamAnswerError('3002', 'x')), 'delivered', 'already done at home: delivered');
  assert.is(classifyError(new UpstreamAnswerError('2001', 'x')), 'dead');
  assert.is(classifyError(new UpstreamAnswerError('3003', 'x')), 'retry', 'home busy');
  assert.is(classifyError(new BadRequestError('x')), 'dead');
  assert.is(classifyError(new CardError('x')), 'retry', 'our card failed: try again');
});

test.run();
