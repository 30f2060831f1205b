import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { isStmCode } from '../src/code/identifiers.ts';
import { API_KEY, testAppliance } from './helpers/appliance.ts';
import { PtyPair, socatMissing } from './helpers/pty-pair.ts';
import { needs } from './helpers/skip.ts';
import { openSse } from './helpers/sse.ts';
import { tempDir } from './helpers/tmp.ts';

const serial = needs(socatMissing());

serial('a code written into a pty-backed serial scanner arrives verified on /v1/scans with the scanner ID and STM number', async () => {
  const t = tempDir('ehc-pty-');
  const pty = new PtyPair(path.join(t.dir, 'scanner'), path.join(t.dir, 'host'));
  await pty.plug();
  const a = await testAppliance((doc) => {
    doc.scanners = [{ driver: 'serial', path: pty.devicePath, suffix: 'CR', name: '挂号窗口 1', station: 'desk-1' }];
  });
  try {
    const sse = await openSse(`${a.appliance.url}/v1/scans?station=desk-1`, { authorization: `Bearer ${API_KEY}` });
    assert.is(sse.status, 200);
    for (let i = 0; i < 200 && a.appliance.scanning.scanners().find((s) => s.path === pty.devicePath)?.state !== 'open'; i++) await new Promise((r) => setTimeout(r, 25));
    assert.is(a.appliance.scanning.scanners().find((s) => s.path === pty.devicePath)?.state, 'open', 'the configured scanner is opened');
    const code = await issueHealthCode(a.appliance.card, { identity: { idType: '01', idNo: '350322199008207715' }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
    pty.write(`]Q1${code}\r`);
    await sse.until((evs) => evs.some((e) => e.event === 'result'), 10_000);
    const result = JSON.parse(sse.events.find((e) => e.event === 'result')!.data) as Record<string, any>;
    sse.close();
    assert.is(result.ret_code, '0000');
    assert.is(result.decided_by, 'local');
    assert.is(result.id_no, '350322199008207715');
    assert.is(result.station, 'desk-1');
    assert.type(result.scannerId, 'string');
    assert.ok(isStmCode(result.termId), `STM number ${result.termId}`);
    assert.is(result.term_id, result.termId, 'the verification carried the terminal number');
    const listed = (await (await fetch(`${a.appliance.url}/v1/scanners`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as { scanners: Array<Record<string, any>> };
    assert.ok(listed.scanners.some((s) => s.scannerId === result.scannerId && s.termId === result.termId));
  } finally {
    await a.stop();
    await pty.unplug();
    t.cleanup();
  }
});

test.run();
