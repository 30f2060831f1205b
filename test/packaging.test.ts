/**
 * Static checks of packaging/ that need no root: the shipped site config is valid and safe, the unit
 * keeps its systemd contract and hardening, the udev rules exist. The booted proof is
 * test/system/boot.ts (npm run test:system).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.ts';
import { STM_PATTERN } from '../src/scan/terminals.ts';
import { APPLIANCE_NODE_FLAGS } from '../bench/lib.ts';
import { checkPlaceholders } from '../src/config/startup-checks.ts';
import { ConfigError } from '../src/config/load.ts';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'packaging');
const unit = readFileSync(path.join(pkg, 'ehc-edge.service'), 'utf8');
const directives = new Map<string, string[]>();
for (const line of unit.split('\n')) {
  const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
  if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
}
const one = (k: string) => directives.get(k)?.at(-1);

test('the shipped site config validates, keeps state in /var/lib and sends nothing off the box', () => {
  const c = loadConfig(path.join(pkg, 'appliance.config.json'));
  assert.is(c.stateDir, '/var/lib/ehc-edge');
  assert.is(c.simulator.enabled, false);
  assert.is(c.card.keyFile, '/var/lib/ehc-edge/soft-card.keys.json');
  assert.match(c.his.listen, /^127\.0\.0\.1:/);
  assert.is(new URL(c.upstream.url).hostname, '127.0.0.1');
  // scanners are numbered from site.termId when there is no local EHCIN: it must be an STM number
  assert.ok(c.site.localEhcins.length > 0 || STM_PATTERN.test(c.site.termId), 'site.termId is an STM number');
});

test('the unit is Type=notify with NotifyAccess=main, a watchdog and a bounded stop', () => {
  assert.is(one('Type'), 'notify');
  assert.is(one('NotifyAccess'), 'main');
  assert.match(one('WatchdogSec') ?? '', /^\d+s$/);
  assert.match(one('TimeoutStopSec') ?? '', /^\d+s$/);
  assert.is(one('Restart'), 'on-failure');
  assert.is(one('RestartPreventExitStatus'), '2', 'a config error (exit 2) is not restarted in a loop');
  assert.is(one('User'), 'ehc-edge');
  assert.is(one('StateDirectory'), 'ehc-edge');
});

test('the unit is hardened, without MemoryDenyWriteExecute (V8 needs W+X pages)', () => {
  for (const [k, v] of Object.entries({ ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', NoNewPrivileges: 'yes', DevicePolicy: 'closed', CapabilityBoundingSet: '' })) {
    assert.is(one(k), v, k);
  }
  assert.not.ok(directives.has('MemoryDenyWriteExecute'));
  assert.is(one('RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6 AF_NETLINK');
  const allowed = directives.get('DeviceAllow') ?? [];
  for (const d of ['char-hidraw rw', 'char-ttyACM rw', 'char-ttyUSB rw', '/dev/ehc-crypto-card rw']) assert.ok(allowed.includes(d), d);
  assert.ok((directives.get('SystemCallFilter') ?? []).includes('@system-service'));
});

test('udev rules give scanners and the crypto card to group ehc-edge; ModemManager ignores scanner ttys', () => {
  const rules = readdirSync(path.join(pkg, 'udev')).filter((f) => f.endsWith('.rules'));
  assert.ok(rules.includes('60-ehc-edge-scanners.rules'));
  assert.ok(rules.includes('61-ehc-edge-crypto-card.rules'));
  const scanners = readFileSync(path.join(pkg, 'udev', '60-ehc-edge-scanners.rules'), 'utf8');
  assert.match(scanners, /ID_MM_DEVICE_IGNORE/);
  for (const kind of ['hidraw', 'ttyACM', 'ttyUSB']) assert.match(scanners, new RegExp(kind));
  const card = readFileSync(path.join(pkg, 'udev', '61-ehc-edge-crypto-card.rules'), 'utf8');
  assert.match(card, /GROUP="ehc-edge"/);
  assert.match(card, /SYMLINK\+="ehc-crypto-card"/);
});

test('maintainer scripts and launchers are executable shell scripts', () => {
  for (const f of ['debian/postinst', 'debian/prerm', 'debian/postrm', 'ehc-edge', 'ehc-edge-daemon', 'build-deb.sh']) {
    const p = path.join(pkg, f);
    assert.match(readFileSync(p, 'utf8'), /^#!\/(usr\/)?bin\/(env )?(ba)?sh/, f);
    if (f !== 'build-deb.sh') assert.ok((statSync(p).mode & 0o111) !== 0, `${f} is executable`);
  }
  assert.match(readFileSync(path.join(pkg, 'ehc-edge-daemon'), 'utf8'), /\nexec \/usr\/lib\/ehc-edge\/runtime\/bin\/node /, 'exec keeps node (the bundled runtime) the main PID');
});

test('the service, npm start and the benchmark run node with the same flags', () => {
  const daemon = readFileSync(path.join(pkg, 'ehc-edge-daemon'), 'utf8').match(/\nexec \/usr\/lib\/ehc-edge\/runtime\/bin\/node (.*)/)![1]!;
  const start = (JSON.parse(readFileSync(path.join(pkg, '..', 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  assert.ok(APPLIANCE_NODE_FLAGS.length > 0);
  for (const flag of APPLIANCE_NODE_FLAGS) {
    assert.ok(daemon.split(' ').includes(flag), `ehc-edge-daemon runs node with ${flag}`);
    assert.ok(start.split(' ').includes(flag), `npm start runs node with ${flag}`);
  }
});

test('the shipped config does not start as shipped: its placeholder keys are refused (exit 2 at start)', () => {
  const c = loadConfig(path.join(pkg, 'appliance.config.json'));
  try {
    checkPlaceholders(c);
    assert.unreachable('placeholder accepted');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).key, 'his.apiKeys.0');
  }
});

test('one runtime pin, of the Node.js 24 LTS line; both launchers run the bundled runtime and the compiled JavaScript', () => {
  const pin = readFileSync(path.join(pkg, 'node-runtime.version'), 'utf8').trim();
  assert.match(pin, /^24\.\d+\.\d+$/);
  const build = readFileSync(path.join(pkg, 'build-deb.sh'), 'utf8');
  assert.match(build, /node-runtime\.version/);
  assert.not.match(build.split('\n').find((l) => l.startsWith('Depends:')) ?? '', /nodejs/, 'Depends: does not name nodejs');
  for (const f of ['ehc-edge', 'ehc-edge-daemon']) {
    const text = readFileSync(path.join(pkg, f), 'utf8');
    assert.match(text, /runtime\/bin\/node/, `${f} runs the bundled runtime`);
    assert.not.match(text.replace(/^#.*$/gm, ''), /tsx|\.ts\b/, `${f} runs no TypeScript`);
  }
  const pkgJson = JSON.parse(readFileSync(path.join(pkg, '..', 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  for (const dev of ['tsx', 'typescript', 'esbuild']) assert.not.ok(dev in pkgJson.dependencies, `${dev} is not a runtime dependency`);
  assert.ok('tsx' in pkgJson.devDependencies && 'typescript' in pkgJson.devDependencies);
});

test.run();
