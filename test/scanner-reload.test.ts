/**
 * SIGHUP reloads scanners: on the production wiring (startAppliance, and its reload(), which SIGHUP in
 * src/main.ts and POST /v1/admin/reload call) with serial scanners on real ttys (socat pty pairs), a new
 * scanners[] opens the added scanner, closes the removed one, reopens the one whose device settings
 * changed, relabels the one whose station changed without reopening it, and leaves the unchanged one
 * alone — a scan it is in the middle of receiving when the reload comes arrives whole afterwards.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import type { StreamEvent } from '../src/scan/hub.ts';
import { testAppliance } from './helpers/appliance.ts';
import { PtyPair, socatMissing } from './helpers/pty-pair.ts';
import { needs } from './helpers/skip.ts';
import { tempDir } from './helpers/tmp.ts';

const serial = needs(socatMissing());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

serial('a reloaded scanners[] opens, closes and reopens just the scanners that changed; the others keep running and keep their in-flight scan', async () => {
  const t = tempDir('ehc-scanner-reload-');
  const pty = Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((n) => [n, new PtyPair(path.join(t.dir, `scanner-${n}`), path.join(t.dir, `host-${n}`))]));
  for (const p of Object.values(pty)) await p.plug();
  const entry = (n: string, extra: Record<string, unknown> = {}) => ({ driver: 'serial', path: pty[n]!.devicePath, suffix: 'CR', name: `desk ${n}`, station: `desk-${n}`, ...extra });
  let doc: Record<string, any> = {};
  const a = await testAppliance((d) => {
    d.scanners = [entry('a'), entry('b'), entry('c'), entry('e')];
    doc = d;
  });
  const id = (n: string) => `serial:${pty[n]!.devicePath}`;
  const view = (n: string) => a.appliance.scanning.scanners().find((s) => s.scannerId === id(n));
  const events: StreamEvent[] = [];
  const unsubscribe = a.appliance.scanning.hub.subscribe((ev) => void events.push(ev));
  const resultFrom = async (n: string, from: number, limitMs = 10_000) => {
    for (let end = Date.now() + limitMs; Date.now() < end; await sleep(20)) {
      const ev = events.slice(from).find((e) => (e.type === 'result' || e.type === 'error') && e.scannerId === id(n));
      if (ev) return ev;
    }
    return undefined;
  };
  const code = () => issueHealthCode(a.appliance.card, { identity: { idType: '01', idNo: '350322199008207715' }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
  try {
    for (let i = 0; i < 400 && !['a', 'b', 'c', 'e'].every((n) => view(n)?.state === 'open'); i++) await sleep(25);
    for (const n of ['a', 'b', 'c', 'e']) assert.is(view(n)?.state, 'open', `scanner ${n} open at start`);
    const openedAt = Object.fromEntries(['a', 'c', 'e'].map((n) => [n, view(n)!.openedAt]));

    // scanner a is in the middle of a scan when the reload comes
    const codeA = await code();
    pty.a!.write(`]Q1${codeA.slice(0, 40)}`);
    await sleep(100);

    // b removed, c's framing changed (LF), d added, e moved to another station, a untouched; one key needs a restart
    const nextDoc = structuredClone(doc);
    nextDoc.scanners = [entry('a'), entry('c', { suffix: 'LF' }), entry('d'), entry('e', { station: 'desk-e2', name: 'desk e, moved' })];
    nextDoc.upstream.timeoutMs = 1234;
    writeFileSync(a.config.configPath, JSON.stringify(nextDoc, null, 2));
    const r = await a.appliance.reload('SIGHUP');
    assert.ok(r.ok, JSON.stringify(r));
    if (!r.ok) return;
    assert.equal(r.applied, ['scanners']);
    assert.equal(r.needsRestart, ['upstream.timeoutMs']);
    assert.equal(r.scanners, { added: [id('d')], removed: [id('b')], reopened: [id('c')], updated: [id('e')] });

    // a: the same open port, and the rest of its scan completes the code it started before the reload
    assert.is(view('a')?.state, 'open');
    assert.is(view('a')?.openedAt, openedAt.a, 'scanner a was not reopened');
    let from = events.length;
    pty.a!.write(`${codeA.slice(40)}\r`);
    const ra = await resultFrom('a', from);
    assert.ok(ra, 'the scan in flight on a arrives');
    assert.is(ra!.type, 'result', JSON.stringify(ra!.data).slice(0, 200));
    assert.is(ra!.data.ret_code, '0000');
    assert.is(ra!.data.station, 'desk-a');

    // b: closed and no longer listed; what it sends goes nowhere
    assert.is(view('b'), undefined, 'the removed scanner is not listed');
    from = events.length;
    pty.b!.write(`]Q1${await code()}\r`);

    // c: reopened with the new framing (LF ends a scan now)
    for (let i = 0; i < 200 && view('c')?.state !== 'open'; i++) await sleep(25);
    assert.is(view('c')?.state, 'open');
    assert.is.not(view('c')?.openedAt, openedAt.c, 'scanner c was reopened');
    pty.c!.write(`]Q1${await code()}\n`);
    const rc = await resultFrom('c', from);
    assert.is(rc?.type, 'result', 'c ends a scan on LF after the reload');

    // d: opened
    for (let i = 0; i < 200 && view('d')?.state !== 'open'; i++) await sleep(25);
    assert.is(view('d')?.state, 'open', 'the added scanner is opened');
    pty.d!.write(`]Q1${await code()}\r`);
    const rd = await resultFrom('d', from);
    assert.is(rd?.type, 'result');
    assert.is(rd?.data.station, 'desk-d');

    // e: not reopened, its scans carry the new station and name
    assert.is(view('e')?.openedAt, openedAt.e, 'scanner e was not reopened');
    assert.is(view('e')?.station, 'desk-e2');
    pty.e!.write(`]Q1${await code()}\r`);
    const re = await resultFrom('e', from);
    assert.is(re?.type, 'result');
    assert.is(re?.data.station, 'desk-e2');
    assert.is(re?.data.name, 'desk e, moved');

    assert.is(await resultFrom('b', from, 300), undefined, 'nothing from the removed scanner');

    // the same file once more: nothing left to apply, the restart key still named
    const again = await a.appliance.reload('SIGHUP');
    assert.ok(again.ok);
    if (!again.ok) return;
    assert.equal(again.applied, []);
    assert.equal(again.needsRestart, ['upstream.timeoutMs']);
    assert.is(again.scanners, undefined);
    const logged = a.log.lines.filter((l) => l.includes('scanners reconfigured'));
    assert.is(logged.length, 1, 'the manager logs the change once');
    const reloaded = a.log.lines.filter((l) => l.includes('"msg":"config reloaded"')).map((l) => JSON.parse(l));
    assert.equal(reloaded[0]?.scanners, r.scanners, 'the reload line says what was done to the scanners');
    assert.equal(reloaded[0]?.needsRestart, ['upstream.timeoutMs']);
  } finally {
    unsubscribe();
    await a.stop();
    for (const p of Object.values(pty)) await p.unplug();
    t.cleanup();
  }
});

test.run();
