/**
 * `ehc-edge card` provisioning the standard's way, against softsdf: export the card's encryption
 * public key, open a card system's envelope in the card (check value compared with one computed here
 * independently), generate-and-wrap a storage/MAC key inside the card, show the key references — and
 * a library without the function is named. Each change is audited in the appliance's trail.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../tools/card-keys.ts';
import { SdfCard } from '../src/crypto/sdf-card.ts';
import { built, cardFixture, quietLog, SOFTSDF_PATH } from './helpers/softsdf.ts';
import { tempDir } from './helpers/tmp.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const write = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  process.stderr.write = ((chunk: string) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
  }
}

function writeConfig(dir: string, sdf: Record<string, unknown>): string {
  const doc = JSON.parse(readFileSync(path.join(ROOT, 'appliance.config.json'), 'utf8'));
  doc.stateDir = path.join(dir, 'state');
  doc.card = { driver: 'sdf', sdf: { sessions: 1, ...sdf } };
  const file = path.join(dir, 'appliance.config.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

const kcvOf = (keyHex: string) => {
  const c = createCipheriv('sm4-ecb', Buffer.from(keyHex, 'hex'), null).setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.alloc(16)), c.final()]).subarray(0, 8).toString('hex').toUpperCase();
};

if (!built.ok) {
  test.skip(`card provisioning skipped: ${built.why}`, () => undefined);
} else {
  test('enc-key → envelope (card system) → import-envelope → generate → a card configured from the output is ready', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const config = writeConfig(dir, { library: SOFTSDF_PATH, kek: 40 });
      const enc = await run(['enc-key', '--config', config, '--json']);
      assert.is(enc.code, 0, enc.err);
      const pub = JSON.parse(enc.out).public_key as string;
      assert.is(pub, f.device.encPublicKey.toUpperCase());

      const sealed = await run(['envelope', '--public-key', pub, '--key', f.material.ehcid, '--json']);
      assert.is(sealed.code, 0, sealed.err);
      const envelope = JSON.parse(sealed.out).envelope as string;
      const imported = await run(['import-envelope', '--config', config, '--role', 'ehcid', '--envelope', envelope, '--json']);
      assert.is(imported.code, 0, imported.err);
      const imp = JSON.parse(imported.out);
      assert.is(imp.kcv, kcvOf(f.material.ehcid), 'the check value the card computed is the key\'s');
      assert.is(imp.config.card.sdf.envelopes.ehcid, envelope);
      // the trail cannot MAC yet (no mac key in the card): it says so instead of pretending
      assert.is(imp.audit.recorded, false);
      assert.match(imp.audit.why, /crypto card|8008|keys not loadable|no source/);

      const other = await run(['import-envelope', '--config', config, '--role', 'ehcid', '--envelope', envelope.replace(/^../, 'FF'), '--json']);
      assert.is(other.code, 1, 'a damaged envelope is refused by the card');
      assert.match(other.err, /SDF_ImportKeyWithISK_ECC failed/);

      const gen = await run(['generate', '--config', config, '--role', 'mac', '--kek-alg', 'sm4-cbc', '--json']);
      assert.is(gen.code, 0, gen.err);
      const g = JSON.parse(gen.out);
      assert.is(g.blob_bytes, 48);
      assert.is(g.config.card.sdf.kekAlg, 'sm4-cbc');
      assert.is((await run(['generate', '--config', config, '--role', 'ehcid'])).code, 2, 'ehcid keys come from the card system');

      const sdf = { library: SOFTSDF_PATH, sessions: 2, kek: 40, kekAlg: 'sm4-cbc' as const, isk: f.device.isk, envelopes: { ehcid: envelope, validity: f.sdf.envelopes!.validity, storage: f.sdf.envelopes!.storage }, wrappedKeys: { mac: g.config.card.sdf.wrappedKeys.mac } };
      const card = await SdfCard.open(sdf, f.keys, quietLog);
      assert.ok((await card.health()).ok);
      await card.close();

      // with all keys in the config the trail records the next change, and show lists the references
      const full = writeConfig(dir, sdf);
      const again = await run(['import-envelope', '--config', full, '--role', 'ehcid', '--envelope', envelope, '--json']);
      assert.is(again.code, 0, again.err);
      assert.is(JSON.parse(again.out).audit.recorded, true, JSON.stringify(JSON.parse(again.out).audit));
      const trail = readFileSync(path.join(dir, 'state', 'audit', (await import('node:fs')).readdirSync(path.join(dir, 'state', 'audit')).find((n) => n.endsWith('.jsonl'))!), 'utf8');
      assert.match(trail, /card\.envelope\.imported/);
      const show = await run(['show', '--config', full, '--json']);
      assert.is(show.code, 0, show.out + show.err);
      const roles = JSON.parse(show.out).roles as Array<{ role: string; source: string; state: string }>;
      assert.equal(roles.map((r) => [r.role, r.source.split(' ')[0], r.state]), [
        ['ehcid', 'envelope', 'present'],
        ['validity', 'envelope', 'present'],
        ['storage', 'envelope', 'present'],
        ['mac', 'wrapped', 'present'],
      ]);
    } finally {
      cleanup();
    }
  });

  test('a library without the function is named: generate on a card lacking SDF_GenerateKeyWithKEK', async () => {
    const { dir, cleanup } = tempDir();
    try {
      cardFixture(dir);
      const so = path.join(dir, 'libnokeygen.so');
      const cc = spawnSync('cc', ['-O1', '-shared', '-fPIC', '-fvisibility=hidden', '-DSOFTSDF_NO_KEYGEN', '-o', so, path.join(ROOT, 'firmware-bridge/softsdf/softsdf.c'), '-lcrypto'], { encoding: 'utf8' });
      assert.is(cc.status, 0, cc.stderr);
      const config = writeConfig(dir, { library: so, kek: 40 });
      const r = await run(['generate', '--config', config, '--role', 'storage']);
      assert.is(r.code, 1);
      assert.match(r.err, /the library has no SDF_GenerateKeyWithKEK/);
    } finally {
      cleanup();
    }
  });
}

test.run();
