import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testAppliance, API_KEY } from './helpers/appliance.ts';
import { openSse } from './helpers/sse.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { viewerView } from '../src/his/roles.ts';

const VIEWER = 'viewer-key-for-the-wall-0001';
const PERSON = { idType: '01', idNo: '350203199001011234', name: '王小明' };

test('viewerView keeps states and codes, drops identities and scan text', () => {
  assert.equal(viewerView({ ret_code: '0000', decided_by: 'local', id_no: PERSON.idNo, user_name: PERSON.name, ehealth_card_id: 'X', text: 'RAW', scannerId: 's', subject: { name: 'n' } }), { ret_code: '0000', decided_by: 'local', scannerId: 's' });
  assert.equal(viewerView('x'), {});
});

test('a viewer key sees status, metrics, scanners and the scan stream without identity fields, and cannot verify or inject', async () => {
  const a = await testAppliance((doc) => {
    doc.his.viewerKeys = [VIEWER];
  });
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  try {
    const url = a.appliance.url;
    for (const p of ['/v1/status', '/metrics', '/v1/scanners']) {
      const r = await fetch(url + p, { headers: as(VIEWER) });
      assert.is(r.status, 200, `viewer GET ${p}`);
      await r.text();
    }
    const code = await issueHealthCode(a.appliance.card, { identity: { idType: PERSON.idType, idNo: PERSON.idNo }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
    const denied = await fetch(`${url}/v1/verify`, { method: 'POST', headers: { ...as(VIEWER), 'content-type': 'application/json' }, body: JSON.stringify({ ehealth_code: code }) });
    assert.is(denied.status, 401, 'a viewer key cannot verify');
    assert.is(((await denied.json()) as { ret_code: string }).ret_code, '1010');
    const inject = await fetch(`${url}/v1/scans/inject`, { method: 'POST', headers: { ...as(VIEWER), 'content-type': 'application/json' }, body: JSON.stringify({ text: code }) });
    assert.is(inject.status, 401, 'a viewer key cannot inject scans');
    await inject.text();

    const viewer = await openSse(`${url}/v1/scans`, as(VIEWER));
    const his = await openSse(`${url}/v1/scans`, as(API_KEY));
    try {
      assert.is(viewer.status, 200);
      const r = await fetch(`${url}/v1/scans/inject`, { method: 'POST', headers: { ...as(API_KEY), 'content-type': 'application/json' }, body: JSON.stringify({ text: code, scanner: 'desk', station: 'desk-1' }) });
      assert.is(r.status, 200);
      await r.text();
      const hasResult = (ev: Array<{ event: string }>) => ev.some((e) => e.event === 'result');
      await Promise.all([viewer.until(hasResult), his.until(hasResult)]);
      const hisResult = JSON.parse(his.events.find((e) => e.event === 'result')!.data);
      const viewerResult = JSON.parse(viewer.events.find((e) => e.event === 'result')!.data);
      assert.is(hisResult.id_no, PERSON.idNo, 'the HIS key gets the identity');
      assert.is(viewerResult.ret_code, '0000');
      assert.is(viewerResult.station, 'desk-1');
      const text = viewer.events.map((e) => e.data).join('\n');
      assert.not.ok(text.includes(PERSON.idNo) || text.includes(`${PERSON.idNo.slice(0, 4)}*`) || text.includes(code), 'no ID number (clear or masked) and no scan text in the viewer stream (not the last 4 digits alone: event ids and times can hold them by chance)');
      assert.is(viewerResult.id_no, undefined);
      assert.is(viewerResult.ehealth_card_id, undefined);
    } finally {
      viewer.close();
      his.close();
    }
  } finally {
    await a.stop();
  }
});

test.run();
