import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { importKeys, main, wrapKey } from '../tools/card-keys.ts';
import { CliError, EXIT } from '../tools/lib/cli.ts';
import { tempDir } from './helpers/tmp.ts';

/** A refused input: exit 2, its English text (the run's language does not matter here) matching `text`. */
const refused = (text: RegExp) => (e: unknown) => e instanceof CliError && e.exitCode === EXIT.USAGE && text.test(e.english);

test('importKeys writes a 0600 softsdf key file, replaces an index in place of adding, keeps the others', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'softsdf.keys');
    importKeys(file, [
      { kind: 'sym', index: 1, key: '00'.repeat(16) },
      { kind: 'sym', index: 2, key: '11'.repeat(16) },
    ]);
    importKeys(file, [{ kind: 'sym', index: 1, key: 'AB'.repeat(16) }, { kind: 'pin', index: 1, password: 'pw-1' }]);
    assert.is(statSync(file).mode & 0o777, 0o600);
    const lines = readFileSync(file, 'utf8').trim().split('\n').filter((l) => !l.startsWith('#'));
    assert.equal(lines.sort(), ['pin 1 pw-1', `sym 1 ${'ab'.repeat(16)}`, `sym 2 ${'11'.repeat(16)}`]);
    assert.throws(() => importKeys(file, [{ kind: 'sym', index: 3, key: 'xyz' }]), refused(/32 hex digits/));
    assert.throws(() => importKeys(file, [{ kind: 'sym', index: 300, key: '00'.repeat(16) }]), refused(/0\.\.255/));
  } finally {
    cleanup();
  }
});

test('wrapKey is SM4-ECB of the key under the KEK (GB/T 32907 example)', () => {
  assert.is(wrapKey('0123456789abcdeffedcba9876543210', '0123456789abcdeffedcba9876543210'), '681EDF34D206965E86B3E94F536E4246');
  assert.throws(() => wrapKey('00', '00'), refused(/32 hex digits/));
});

test('the CLI imports a role at an index and refuses an unknown role', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'k');
    assert.is(await main(['import', '--keyfile', file, '--role', 'validity', '--index', '7', '--key', '22'.repeat(16)]), 0);
    assert.ok(readFileSync(file, 'utf8').includes(`sym 7 ${'22'.repeat(16)}`));
    const before = readFileSync(file, 'utf8');
    assert.is(await main(['import', '--keyfile', file, '--role', 'nonsense', '--key', '22'.repeat(16)]), 2, 'unknown role: usage error');
    assert.is(await main(['import', '--role', 'mac', '--key', '22'.repeat(16)]), 2, 'no --keyfile: usage error');
    assert.is(readFileSync(file, 'utf8'), before, 'refused imports leave the key file alone');
  } finally {
    cleanup();
  }
});

test.run();
