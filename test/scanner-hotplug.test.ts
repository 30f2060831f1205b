/**
 * The device watcher: inotify events on watched folders and, without any event (sysfs), a changed
 * signature found by the poll, both lead to one rediscovery; close() stops everything.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { watchDevices, watchDirsFor } from '../drivers/hotplug.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'ehc-hotplug-'));

async function until(what: string, ok: () => boolean, limitMs = 10000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a new entry in a watched folder triggers a rediscovery', async () => {
  let changes = 0;
  const w = watchDevices({ dirs: [dir], pollMs: 60_000, signature: () => 'same', onChange: () => changes++ });
  writeFileSync(path.join(dir, 'ttyACM9'), '');
  await until('inotify change', () => changes >= 1);
  w.close();
  const before = changes;
  writeFileSync(path.join(dir, 'ttyACM8'), '');
  await new Promise((r) => setTimeout(r, 100));
  assert.is(changes, before, 'nothing after close()');
});

test('without any folder event, a changed signature is found by the poll', async () => {
  let sig = 'a';
  let changes = 0;
  const w = watchDevices({ dirs: [], pollMs: 20, signature: () => sig, onChange: () => changes++ });
  await new Promise((r) => setTimeout(r, 80));
  assert.is(changes, 0, 'no change, no rediscovery');
  sig = 'b';
  await until('poll change', () => changes === 1);
  await new Promise((r) => setTimeout(r, 80));
  assert.is(changes, 1, 'one change, one rediscovery');
  w.close();
});

test('watched folders: /dev and by-path/by-id with autodetect, plus the folders of configured paths', () => {
  assert.equal(watchDirsFor(['/dev/serial/by-path/x', '/tmp/a/scanner'], false), ['/dev/serial/by-path', '/tmp/a']);
  assert.ok(watchDirsFor([], true).includes('/dev'));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
