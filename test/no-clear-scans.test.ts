/**
 * Raw scans and rejected inputs are never stored in clear (#18 What to build 7): a real appliance is fed
 * scans and HIS requests that carry a known ID number, name and phone in clear — an ID card's barcode,
 * garbage, a rejected code, a good code of that person — through the scanner path (inject) and the HIS
 * port, with a webhook target that cannot be reached (its journal fills); then every file of the state
 * folder (audit days, outbox, dead letters, history, statistics, webhook journal, state.json …) and every
 * log line is searched for the clear values. None may be there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { API_KEY, testAppliance } from './helpers/appliance.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';

const ID = '350203199001011234';
const NAME = '王小明';
const PHONE = '13612345678';
const GARBAGE = 'BAD:0:X:Y';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('no clear ID number, name, phone or raw scan text in any file of the state folder or in the log', async () => {
  const t = await testAppliance((doc) => {
    doc.webhooks = { targets: [{ name: 'his', url: 'http://127.0.0.1:9/hook', secret: 'webhook-secret-0123456789abcdef0123' }] };
  });
  try {
    const a = t.appliance;
    const inputs = [ID, `${NAME}|${ID}|${PHONE}`, GARBAGE, `${ID}:0:${NAME}:${PHONE}`, `${'A'.repeat(32)}:1:${ID}:${NAME}:${PHONE}`];
    for (const [i, text] of inputs.entries()) {
      await a.scanning.inject({ text, scanner: `desk${i}`, station: 'desk-1' });
      await a.scanning.inject({ text, scanner: `desk${i}`, station: 'desk-1' }); // a duplicate too
      const r = await t.post({ ehealth_code: text, operator_name: NAME });
      assert.ok(r.status >= 400, `${text} is refused (${r.status})`);
    }
    const good = await issueHealthCode(a.card, { identity: { idType: '01', idNo: ID }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
    const ok = await t.post({ ehealth_code: good, operator_name: NAME });
    assert.is(ok.status, 200);
    await a.scanning.inject({ text: good, scanner: 'desk9' });
    // a body that is not even valid: never stored
    const bad = await fetch(`${a.url}/v1/verify`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ ehealth_code: ID, id_no: ID, name: NAME, phone: PHONE }) });
    assert.is(bad.status, 400);
    await bad.text();
    await a.scanning.idle();
    await new Promise((r) => setTimeout(r, 300)); // audit and journal writes behind the answers
  } finally {
    await t.appliance.stop(); // everything flushed and closed
  }
  try {
    const files = filesUnder(t.config.stateDir);
    assert.ok(files.some((f) => /audit-\d{8}\.jsonl$/.test(f)), 'audit day files were written');
    assert.ok(files.some((f) => f.includes('webhooks')), 'the webhook journal was written');
    const needles = [ID, NAME, PHONE, GARBAGE, ID.slice(0, 8)];
    const found: string[] = [];
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const n of needles) if (bytes.includes(Buffer.from(n, 'utf8'))) found.push(`${path.relative(t.config.stateDir, f)}: ${n}`);
    }
    const log = t.log.lines.join('\n');
    for (const n of needles) if (log.includes(n)) found.push(`log: ${n} in ${t.log.lines.find((l) => l.includes(n))}`);
    assert.equal(found, []);
    // the audit trail still tells the rejections apart: a digest per input
    const audit = files.filter((f) => f.endsWith('.jsonl') && f.includes('audit')).map((f) => readFileSync(f, 'utf8')).join('');
    assert.match(audit, /"ehealth_code":"sm3:[0-9a-f]{16}\(\d+\)"/);
  } finally {
    await t.stop();
  }
});

test.run();
