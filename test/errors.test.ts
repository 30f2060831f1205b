import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EhcError, asEhcError, isReturnCode, RETURN_CODES } from '../src/errors.ts';

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

test.run();
