import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { parseHealthCode, looksLikeHealthCode } from '../src/code/parse.ts';
import { isEhcin, isStmCode, makeStmCode, parseComponentNumber, parseEhcin } from '../src/code/identifiers.ts';
import { maskIdNo, maskName, maskPhone, maskDeep, maskText } from '../src/platform/mask.ts';
import { EhcError } from '../src/errors.ts';

const EHCID = 'C50EF5E2892CF29BDC2EFF37C4E9B36F1DA8BDC53B48F7AB5273E4D080CEFA08';
const VALID = '7F4D9C5D163963FFF9BE8DEB29037A75';

function codeOf(input: unknown): string {
  try {
    parseHealthCode(input);
    return '0000';
  } catch (err) {
    if (!(err instanceof EhcError)) throw err;
    return err.code;
  }
}

test('the 附录A example code (5 fields, legacy EHCAPPID) parses', () => {
  const c = parseHealthCode(`${EHCID}:0:${VALID}::35020001001`);
  assert.is(c.ehcid, EHCID);
  assert.is(c.tag, '0');
  assert.is(c.codeType, 'dynamic');
  assert.is(c.valid, VALID);
  assert.is(c.ext, '');
  assert.is(c.ehcappid, '35020001001');
  assert.is(c.ehcin, null);
});

test('4-field dynamic and static forms; case-insensitive hex; EHCAPPID → EHCIN', () => {
  const d = parseHealthCode(`${EHCID.toLowerCase()}:0:${VALID.toLowerCase()}:1101a0056appa0001\r\n`);
  assert.is(d.ehcid, EHCID);
  assert.is(d.valid, VALID);
  assert.is(d.ehcappid, '1101A0056APPA0001');
  assert.is(d.ehcin, '1101A0056');
  const s = parseHealthCode(`${EHCID}:1::1101A0056APPA0001`);
  assert.is(s.codeType, 'static');
  assert.is(s.valid, '');
  const e = parseHealthCode(`${EHCID}:1::wechat:3502A0001XCXB0002`);
  assert.is(e.ext, 'wechat');
  assert.is(e.ehcin, '3502A0001');
});

test('rejections carry the spec return code', () => {
  assert.is(codeOf(''), '2002');
  assert.is(codeOf(42), '2002');
  assert.is(codeOf('hello'), '2002');
  assert.is(codeOf(`${EHCID}:0:${VALID}`), '2002'); // 3 fields
  assert.is(codeOf(`${EHCID}:0:${VALID}:a:b:1101A0056APPA0001`), '2002'); // 6 fields
  assert.is(codeOf(`${EHCID}:2:${VALID}:1101A0056APPA0001`), '2002'); // bad TAG
  assert.is(codeOf(`${EHCID.slice(1)}:0:${VALID}:1101A0056APPA0001`), '2002'); // odd EHCID
  assert.is(codeOf(`${EHCID.replace('C', 'G')}:0:${VALID}:1101A0056APPA0001`), '2002');
  assert.is(codeOf(`${EHCID}:0::1101A0056APPA0001`), '2003'); // dynamic without VALID
  assert.is(codeOf(`${EHCID}:0:XYZ:1101A0056APPA0001`), '2004');
  assert.is(codeOf(`${EHCID}:0:${VALID}00:1101A0056APPA0001`), '2004');
  assert.is(codeOf(`${EHCID}:1:${VALID}:1101A0056APPA0001`), '2002'); // static with VALID
  assert.is(codeOf(`${EHCID}:0:${VALID}:1101A0056ABCA0001`), '2002'); // unknown category
  assert.is(codeOf(`${EHCID}:0:${VALID}:short`), '2002');
  assert.is(codeOf(`${EHCID}:0:${VALID}:${'1'.repeat(600)}`), '2002');
});

test('identifiers of 附录D', () => {
  assert.ok(isEhcin('1101A0056'));
  assert.not.ok(isEhcin('1101G0056'));
  assert.not.ok(isEhcin('110A0056'));
  assert.equal(parseEhcin('3502B0123'), { code: '3502B0123', province: '35', city: '02', authorityClass: 'B', serial: '0123' });
  assert.equal(parseComponentNumber('1101A0056APPA0001')?.category, 'APP');
  assert.is(parseComponentNumber('1101A0056ZZZA0001'), null);
  const stm = makeStmCode('3502A0001', 'B', 7);
  assert.is(stm, '3502A0001STMB0007');
  assert.ok(isStmCode(stm));
  assert.not.ok(isStmCode('3502A0001APPB0007'));
  assert.throws(() => makeStmCode('nope', 'A', 1), RangeError);
});

test('masking per 附录B: name 2nd char *, ID first 4 + last 4', () => {
  assert.is(maskName('陈俊海'), '陈*海');
  assert.is(maskName('张三'), '张*');
  assert.is(maskName('欧阳娜娜'), '欧*娜娜');
  assert.is(maskIdNo('350322199008207715'), '3503**********7715');
  assert.is(maskPhone('13646032065'), '136****2065');
  assert.is(maskText('id 350322199008207715 tel 13646032065'), 'id 3503**********7715 tel 136****2065');
  const masked = maskDeep({ user_name: '陈俊海', nested: { id_no: '350322199008207715' }, list: ['13646032065'] });
  assert.equal(masked, { user_name: '陈*海', nested: { id_no: '3503**********7715' }, list: ['136****2065'] });
});

test('fuzz: random and mutated inputs never throw anything but the parser error', () => {
  const seeds = [`${EHCID}:0:${VALID}::35020001001`, `${EHCID}:1::1101A0056APPA0001`, `${EHCID}:0:${VALID}:x:3502A0001STMA0001`];
  const mutate = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.oneof(fc.string({ maxLength: 3 }), fc.constantFrom(':', '', '\u0000', '０', 'ｆ', '\ud800'))), { maxLength: 6 })).map(([s, edits]) => {
    let out = s;
    for (const [pos, ins] of edits) {
      const i = pos % (out.length + 1);
      out = out.slice(0, i) + ins + out.slice(i + (ins === '' ? 1 : 0));
    }
    return out;
  });
  const anything = fc.oneof(fc.string({ maxLength: 600 }), fc.string({ unit: 'grapheme', maxLength: 200 }), mutate, fc.anything());
  let accepted = 0;
  fc.assert(
    fc.property(anything, (input) => {
      try {
        const c = parseHealthCode(input);
        accepted++;
        assert.ok(c.ehcid === c.ehcid.toUpperCase() && /^[0-9A-F]+$/.test(c.ehcid));
        assert.ok(c.tag === '0' ? c.valid.length === 32 : c.valid === '');
      } catch (err) {
        if (!(err instanceof EhcError)) throw err;
        assert.ok(['2002', '2003', '2004'].includes(err.code), err.code);
      }
    }),
    { numRuns: 20000, seed: 20261126 },
  );
  assert.ok(accepted > 0, 'the mutation corpus also produces valid codes');
});

test('looksLikeHealthCode is a cheap shape test', () => {
  assert.ok(looksLikeHealthCode(`${EHCID}:1::1101A0056APPA0001`));
  assert.not.ok(looksLikeHealthCode('6901234567892'));
});

test.run();
