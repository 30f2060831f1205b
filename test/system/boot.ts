/**
 * Booted-system test of the Debian package (npm run test:system; npm test runs it with EHC_SYSTEM_TEST=1).
 *
 * A matrix of systems (SYSTEMS below). For each: builds the .deb of its architecture (and a second,
 * higher version for the upgrade), boots a debootstrapped minbase root — with no Node.js in it: the
 * package brings its own — with systemd as PID 1 under `systemd-nspawn --boot --register=no
 * --keep-unit --private-network` (its own network namespace: only its loopback exists), runs every
 * command in the guest with nsenter into the container's PID 1, and checks: install, READY via
 * sd_notify, hardening exposure, /v1/health and /v1/verify on the HIS port, restart after kill -9,
 * the watchdog after SIGSTOP, upgrade keeping config/keys/state, remove, purge. A foreign
 * architecture (arm64) runs under qemu-user emulation (qemu-user-static registered with binfmt_misc,
 * flag F). Every step is printed and written to test-output/system-test-<system>.log (copy it to
 * packaging/ on purpose to keep it). Needs root, debootstrap, systemd-container (systemd-nspawn) and
 * the build tools of packaging/build-deb.sh.
 *
 * Environment: EHC_SYSTEM_MATRIX — comma-separated system ids (default: the amd64 ones,
 * debian12-amd64,debian13-amd64; `debian12-arm64` is the emulated one, `all` runs all three);
 * EHC_TEST_CACHE (default /var/cache/ehc-edge-test) keeps the pristine debootstrapped roots;
 * EHC_DEBIAN_MIRROR overrides the mirror (default: the first Debian URI in /etc/apt/sources*).
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { maskText } from '../../src/platform/mask.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const outDir = path.join(repo, 'test-output');
const cacheDir = process.env.EHC_TEST_CACHE ?? '/var/cache/ehc-edge-test';
/** no nodejs: the package carries its runtime */
const GUEST_PACKAGES = ['systemd', 'systemd-sysv', 'libusb-1.0-0', 'udev'];
const GUEST_NODE = '/usr/lib/ehc-edge/runtime/bin/node';
const HIS = '127.0.0.1:18080';
const HIS_KEY = 'system-test-his-key-0123456789abcdef';

interface System {
  id: string;
  suite: string;
  debian: number;
  arch: 'amd64' | 'arm64';
  /** wait multiplier: the emulated system runs every instruction through qemu */
  slow: number;
}
const SYSTEMS: System[] = [
  { id: 'debian12-amd64', suite: 'bookworm', debian: 12, arch: 'amd64', slow: 1 },
  { id: 'debian13-amd64', suite: 'trixie', debian: 13, arch: 'amd64', slow: 1 },
  { id: 'debian12-arm64', suite: 'bookworm', debian: 12, arch: 'arm64', slow: 6 },
];
const wanted = (process.env.EHC_SYSTEM_MATRIX ?? 'debian12-amd64,debian13-amd64').split(',').map((s) => s.trim()).filter(Boolean);
const matrix = wanted.includes('all') ? SYSTEMS : SYSTEMS.filter((s) => wanted.includes(s.id));
const unknown = wanted.filter((w) => w !== 'all' && !SYSTEMS.some((s) => s.id === w));
if (unknown.length || matrix.length === 0) {
  console.error(`EHC_SYSTEM_MATRIX: unknown system ${unknown.join(', ') || '(none given)'}; known: ${SYSTEMS.map((s) => s.id).join(', ')}, all`);
  process.exit(2);
}

mkdirSync(outDir, { recursive: true });
let logFile = path.join(outDir, 'system-test.log');
function startLog(file: string, title: string) {
  logFile = file;
  writeFileSync(logFile, `# ehc-edge booted-system test, ${title}, ${new Date().toISOString()}\n`);
}
/** everything printed or logged passes the masking of personal data (ID numbers, phones) */
const logRaw = (text: string) => appendFileSync(logFile, maskText(text));
const out = (line: string) => {
  process.stdout.write(maskText(line) + '\n');
  logRaw(line + '\n');
};
const results: Array<{ step: string; ok: boolean; detail: string }> = [];
function record(step: string, ok: boolean, detail = '') {
  results.push({ step, ok, detail });
  out(`${ok ? 'PASS' : 'FAIL'}  ${step}${detail ? ` — ${detail}` : ''}`);
}
class Abort extends Error {}
function must(step: string, ok: boolean, detail = ''): void {
  record(step, ok, detail);
  if (!ok) throw new Abort(step);
}

function host(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; quiet?: boolean; cwd?: string } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd ?? repo, env: opts.env ?? process.env, maxBuffer: 64 << 20 });
  if (!opts.quiet) logRaw(`$ ${cmd} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  return r;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let hostArchCached: string | undefined;
const hostArch = () => (hostArchCached ??= host('dpkg', ['--print-architecture'], { quiet: true }).stdout.trim());

// ---------------------------------------------------------------- preflight
function preflight(sys: System): void {
  out('== preflight');
  if (sys.arch !== hostArch()) {
    const binfmt = `/proc/sys/fs/binfmt_misc/qemu-${sys.arch === 'arm64' ? 'aarch64' : sys.arch}`;
    const reg = existsSync(binfmt) ? readFileSync(binfmt, 'utf8') : '';
    if (!/^enabled/m.test(reg) || !/^flags:.*F/m.test(reg)) throw new Abort(`${sys.id} needs qemu-user emulation: apt-get install qemu-user-static binfmt-support (binfmt_misc entry ${binfmt} enabled with flag F; found: ${reg.trim().replace(/\n/g, ' ') || 'none'})`);
    record('qemu-user emulation registered (binfmt_misc, flag F)', true, binfmt);
  }
  if (process.getuid?.() !== 0) throw new Abort('must run as root (debootstrap, systemd-nspawn, nsenter)');
  const missing = ['debootstrap', 'systemd-nspawn', 'nsenter', 'dpkg-deb', 'lintian'].filter((t) => host('sh', ['-c', `command -v ${t}`], { quiet: true }).status !== 0);
  if (missing.length) throw new Abort(`missing ${missing.join(', ')}: apt-get install debootstrap systemd-container util-linux dpkg-dev lintian`);
  record('preflight', true, 'root, debootstrap, systemd-nspawn, nsenter, dpkg-deb, lintian');
}

// ---------------------------------------------------------------- packages
interface Debs {
  v1: string;
  v2: string;
  deb1: string;
  deb2: string;
}
const built = new Map<string, Debs>();
/** the package of an architecture at two versions: built twice, as a site's rebuilt package would be */
function buildDebs(arch: string): Debs {
  const done = built.get(arch);
  if (done) {
    record(`packages for ${arch} (built earlier in this run)`, true, `${path.basename(done.deb1)}, ${path.basename(done.deb2)}`);
    return done;
  }
  out(`== build the ${arch} .deb twice (install, then upgrade)`);
  const pkgVersion = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')).version as string;
  const v1 = process.env.EHC_SYSTEM_TEST_V1 ?? pkgVersion;
  const v2 = `${v1}+systest2`;
  const debs: string[] = [];
  for (const v of [v1]) {
    const t0 = Date.now();
    const existing = path.join(repo, 'packaging', 'dist', `ehc-edge_${v}_${arch}.deb`);
    if (process.env.EHC_SYSTEM_REUSE_DEB === '1' && existsSync(existing)) {
      // development shortcut: the package already built by `npm run package` (not for a release proof)
      record(`EHC_SYSTEM_REUSE_DEB=1: the ${arch} package built earlier`, true, `${path.relative(repo, existing)}, ${(statSync(existing).size / 1048576).toFixed(1)} MiB, built ${statSync(existing).mtime.toISOString()}`);
      debs.push(existing);
      continue;
    }
    const r = host('bash', ['packaging/build-deb.sh'], { env: { ...process.env, EHC_DEB_VERSION: v, EHC_DEB_ARCH: arch } });
    const deb = path.join(repo, 'packaging', 'dist', `ehc-edge_${v}_${arch}.deb`);
    const lint = /lintian: (\d+) error\(s\), (\d+) warning\(s\), (\d+) info/.exec(r.stdout)?.[0] ?? 'no lintian summary';
    const elf = /every ELF in the package is .*/.exec(r.stdout)?.[0] ?? 'no ELF check';
    const size = existsSync(deb) ? `${(statSync(deb).size / 1048576).toFixed(1)} MiB` : 'no .deb';
    must(`npm run package (EHC_DEB_ARCH=${arch}, version ${v})`, r.status === 0 && existsSync(deb), `${path.relative(repo, deb)}, ${size}; ${lint}; ${elf}; ${Math.round((Date.now() - t0) / 1000)} s`);
    if (r.status !== 0) out((r.stderr || r.stdout).slice(-800));
    debs.push(deb);
  }
  // the upgrade: the same build with a higher version (dpkg-deb -R, Version:, dpkg-deb -b), as a rebuilt
  // package is to dpkg; uncompressed, so the test does not spend minutes in xz a second time
  const deb2 = path.join(repo, 'packaging', 'dist', `ehc-edge_${v2}_${arch}.deb`);
  const tree = path.join(outDir, `repack-${arch}`);
  rmSync(tree, { recursive: true, force: true });
  const unpack = host('dpkg-deb', ['-R', debs[0]!, tree], { quiet: true });
  const control = path.join(tree, 'DEBIAN', 'control');
  if (unpack.status === 0) writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${v2}`));
  const pack = unpack.status === 0 ? host('dpkg-deb', ['--root-owner-group', '-Znone', '-b', tree, deb2], { quiet: true }) : unpack;
  rmSync(tree, { recursive: true, force: true });
  must(`upgrade package ${v2} (the ${v1} build re-versioned)`, pack.status === 0 && existsSync(deb2), pack.status === 0 ? path.relative(repo, deb2) : (pack.stderr || pack.stdout).slice(-300));
  debs.push(deb2);
  const d = { v1, v2, deb1: debs[0]!, deb2: debs[1]! };
  built.set(arch, d);
  return d;
}

// ---------------------------------------------------------------- guest root
function mirror(): string {
  if (process.env.EHC_DEBIAN_MIRROR) return process.env.EHC_DEBIAN_MIRROR;
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').map((f) => `/etc/apt/sources.list.d/${f}`) : [])];
  for (const f of files) {
    if (!existsSync(f) || !/\.(list|sources)$/.test(f)) continue;
    const text = readFileSync(f, 'utf8');
    const m = /^URIs:\s*(\S*debian\/?)\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S*debian\/?)\s/m.exec(text);
    if (m) return m[1]!;
  }
  return 'http://deb.debian.org/debian';
}

function guestRoot(sys: System): string {
  out(`== guest root (debootstrap --arch=${sys.arch} ${sys.suite} minbase, cached)`);
  const key = createHash('sha256').update(GUEST_PACKAGES.join(',')).digest('hex').slice(0, 8);
  const base = path.join(cacheDir, `${sys.suite}-${sys.arch}-minbase-${key}`);
  if (!existsSync(base)) {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${base}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    const m = mirror();
    const t0 = Date.now();
    out(`   debootstrap --arch=${sys.arch} --variant=minbase --include=${GUEST_PACKAGES.join(',')} ${sys.suite} ${tmp} ${m}`);
    const r = host('debootstrap', [`--arch=${sys.arch}`, '--variant=minbase', `--include=${GUEST_PACKAGES.join(',')}`, sys.suite, tmp, m]);
    must(`debootstrap ${sys.suite} ${sys.arch}`, r.status === 0, r.status === 0 ? `${base} (${Math.round((Date.now() - t0) / 1000)} s)` : (r.stderr || r.stdout).slice(-400));
    renameSync(tmp, base);
  } else record(`debootstrap ${sys.suite} ${sys.arch}`, true, `cached ${base}`);
  const noNode = !existsSync(path.join(base, 'usr', 'bin', 'node')) && !existsSync(path.join(base, 'usr', 'bin', 'nodejs'));
  record('the guest has no Node.js of its own', noNode, noNode ? 'no /usr/bin/node' : '/usr/bin/node exists');
  const root = path.join(cacheDir, `run-root-${sys.id}`);
  rmSync(root, { recursive: true, force: true });
  const cp = host('cp', ['-a', '--reflink=auto', base, root], { quiet: true });
  must('fresh copy of the root', cp.status === 0, root);
  writeFileSync(path.join(root, 'etc', 'hostname'), 'ehc-edge-test\n');
  return root;
}

// ---------------------------------------------------------------- boot
interface Guest {
  nspawnPid: number;
  /** wait multiplier of the system (emulation) */
  slow: number;
  /** a foreign architecture under qemu-user */
  emulated: boolean;
  init: number;
  run(cmd: string[], opts?: { quiet?: boolean }): SpawnSyncReturns<string>;
  sh(script: string, opts?: { quiet?: boolean }): SpawnSyncReturns<string>;
}

function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) kids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return kids;
}
/** the descendant of nspawn that is PID 1 of the container's pid namespace */
function containerInit(nspawnPid: number): number | null {
  const queue = [nspawnPid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const k of childrenOf(p)) {
      try {
        const nspid = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${k}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
        if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return k;
      } catch {
        /* gone */
      }
      queue.push(k);
    }
  }
  return null;
}

async function boot(root: string, sys: System): Promise<Guest> {
  out(`== boot ${sys.id}: systemd-nspawn --boot --register=no --keep-unit --private-network${sys.arch !== hostArch() ? ' (qemu-user emulation via binfmt_misc)' : ''}`);
  const consoleLog = path.join(outDir, `guest-console-${sys.id}.log`);
  mkdirSync(path.dirname(consoleLog), { recursive: true });
  const fd = openSync(consoleLog, 'w');
  const child = spawn('systemd-nspawn', ['-q', '-D', root, '--boot', '--register=no', '--keep-unit', '--private-network', '--console=passive', '-M', `ehc-edge-${sys.id}`], {
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  const nspawnPid = child.pid!;
  let init: number | null = null;
  for (let i = 0; i < 100 && init === null; i++) {
    await sleep(100);
    init = containerInit(nspawnPid);
  }
  must('container PID 1 found', init !== null, `nspawn ${nspawnPid}, init ${init}`);
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root', DEBIAN_FRONTEND: 'noninteractive', SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0', TERM: 'dumb' };
  const guest: Guest = {
    nspawnPid,
    slow: sys.slow,
    emulated: sys.arch !== hostArch(),
    init: init!,
    run(cmd, opts = {}) {
      const r = spawnSync('nsenter', ['-t', String(init), '-m', '-u', '-i', '-n', '-p', '-C', '--', ...cmd], { encoding: 'utf8', env, maxBuffer: 64 << 20, timeout: 180_000 * sys.slow });
      if (!opts.quiet) logRaw(`guest$ ${cmd.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
      return r;
    },
    sh(script, opts) {
      return guest.run(['sh', '-c', script], opts);
    },
  };
  let state = '';
  for (let i = 0; i < 120 * sys.slow; i++) {
    state = guest.run(['systemctl', 'is-system-running'], { quiet: true }).stdout.trim();
    if (state === 'running' || state === 'degraded') break;
    await sleep(500);
  }
  const pid1 = readFileSync(`/proc/${init}/comm`, 'utf8').trim();
  must('guest booted with systemd as PID 1', state === 'running' || state === 'degraded', `is-system-running=${state}, PID 1 ${pid1}`);
  if (state === 'degraded') out(`   failed units: ${guest.run(['systemctl', '--failed', '--no-legend', '--plain'], { quiet: true }).stdout.trim().replace(/\n/g, '; ')}`);
  return guest;
}

async function shutdown(g: Guest) {
  g.run(['systemctl', '--no-block', 'poweroff'], { quiet: true });
  for (let i = 0; i < 300; i++) {
    try {
      process.kill(g.nspawnPid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
  try {
    process.kill(g.nspawnPid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

// ---------------------------------------------------------------- checks in the guest
const PROPS = ['ActiveState', 'SubState', 'Result', 'MainPID', 'NRestarts', 'StatusText', 'Type', 'NotifyAccess', 'WatchdogUSec', 'ExecMainCode', 'ExecMainStatus'] as const;
type Unit = Record<(typeof PROPS)[number], string>;
function show(g: Guest): Unit {
  const r = g.run(['systemctl', 'show', 'ehc-edge.service', '-p', PROPS.join(',')], { quiet: true });
  const kv = new Map((r.stdout ?? '').trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  return Object.fromEntries(PROPS.map((p) => [p, kv.get(p) ?? ''])) as Unit;
}
async function until(g: Guest, pred: (s: Unit) => boolean, seconds: number): Promise<Unit> {
  let s = show(g);
  for (let i = 0; i < seconds * 4 * g.slow && !pred(s); i++) {
    await sleep(250);
    s = show(g);
  }
  return s;
}
const brief = (s: Unit) => `${s.ActiveState}/${s.SubState} pid=${s.MainPID} restarts=${s.NRestarts} status="${s.StatusText}"`;

/** HTTP from inside the guest's network namespace with the guest's own node */
function http(g: Guest, method: string, url: string, body?: unknown, key?: string): { status: number; body: string } {
  const js = `const r=await fetch(${JSON.stringify(url)},{method:${JSON.stringify(method)},headers:${JSON.stringify({
    ...(key ? { authorization: `Bearer ${key}` } : {}),
    ...(body ? { 'content-type': 'application/json' } : {}),
  })}${body ? `,body:${JSON.stringify(JSON.stringify(body))}` : ''}});console.log(r.status);console.log(await r.text())`;
  const r = g.run([GUEST_NODE, '--input-type=module', '-e', js]);
  const [status, ...rest] = (r.stdout ?? '').split('\n');
  return { status: Number(status) || 0, body: rest.join('\n').trim() || (r.stderr ?? '').trim().slice(-300) };
}
const sha = (g: Guest, file: string) => g.run(['sha256sum', file], { quiet: true }).stdout.split(' ')[0] ?? '';

/** the site config of the test: the simulator as the home card system (or, `upstreamAway`, nothing there) */
function testConfig(upstreamAway = false): string {
  const base = JSON.parse(readFileSync(path.join(repo, 'appliance.config.json'), 'utf8'));
  base.stateDir = '/var/lib/ehc-edge';
  base.his = { ...base.his, listen: HIS, apiKeys: [HIS_KEY] };
  base.simulator = { ...(base.simulator ?? {}), enabled: true };
  if (upstreamAway) base.upstream = { ...base.upstream, url: 'http://127.0.0.1:18444/ehc' };
  return JSON.stringify(base, null, 2) + '\n';
}
const TEST_CONFIG = '/etc/ehc-edge/system-test.config.json';
const asService = ['runuser', '-u', 'ehc-edge', '--', 'env', `EHC_EDGE_CONFIG=${TEST_CONFIG}`];
const asRoot = ['env', `EHC_EDGE_CONFIG=${TEST_CONFIG}`];
function demoCodes(g: Guest, n: number): string[] {
  const r = g.run([...asService, 'ehc-edge', 'codes', '--json', '--count', String(n)], { quiet: true });
  try {
    return (JSON.parse(r.stdout) as Array<{ code: string }>).map((c) => c.code);
  } catch {
    return [];
  }
}
function queueDepth(g: Guest): number {
  const r = g.run([...asRoot, 'ehc-edge', 'queue', 'status', '--json'], { quiet: true });
  try {
    return Number((JSON.parse(r.stdout) as { depth: number }).depth);
  } catch {
    return NaN;
  }
}

/** backup → purge → reinstall → restore: the audit chain verifies and the records queued before are delivered */
async function backupCycle(g: Guest, root: string, d: Debs, keyFile: string) {
  out('== backup, purge, reinstall, restore');
  const restartActive = async (what: string) => {
    g.sh('systemctl reset-failed ehc-edge; systemctl restart ehc-edge');
    const s = await until(g, (x) => (x.ActiveState === 'active' && x.SubState === 'running') || x.ActiveState === 'failed', 60);
    must(what, s.ActiveState === 'active', brief(s));
    return s;
  };
  // records the home card system has not received yet: its address leads nowhere for a while
  writeFileSync(path.join(root, TEST_CONFIG), testConfig(true));
  await restartActive('upstream away: service active');
  const codes = demoCodes(g, 3);
  const answers = codes.map((code) => http(g, 'POST', `http://${HIS}/v1/verify`, { ehealth_code: code }, HIS_KEY).status);
  const queued = queueDepth(g);
  must('3 codes verified locally while the upstream is away; their records wait in the outbox', codes.length === 3 && answers.every((a) => a === 200) && queued >= 3, `answers ${answers.join(',')}; outbox depth ${queued}`);
  const live = g.run([...asRoot, 'ehc-edge', 'backup', '/root/live.tar.gz']);
  record('`ehc-edge backup` refuses while the service runs (exit 2)', live.status === 2 && !existsSync(path.join(root, 'root', 'live.tar.gz')), `exit ${live.status}: ${(live.stderr || live.stdout).trim().slice(0, 160)}`);
  g.sh('systemctl stop ehc-edge');
  const keys = sha(g, keyFile);
  const b = g.run([...asRoot, 'ehc-edge', 'backup', '/root/site-backup.tar.gz']);
  must('`ehc-edge backup /root/site-backup.tar.gz` (service stopped)', b.status === 0, `exit ${b.status}: ${(b.stdout || b.stderr).trim().slice(0, 240)}`);
  g.sh('systemctl start ehc-edge');
  await until(g, (x) => x.ActiveState === 'active' && x.SubState === 'running', 60);
  const over = g.run([...asRoot, 'ehc-edge', 'restore', '/root/site-backup.tar.gz']);
  record('`ehc-edge restore` refuses over the running service (exit 2)', over.status === 2, `exit ${over.status}: ${(over.stderr || over.stdout).trim().slice(0, 160)}`);
  const purge = g.run(['dpkg', '-P', 'ehc-edge']);
  const gone = g.run(['sh', '-c', 'test -e /var/lib/ehc-edge || test -e /etc/ehc-edge/system-test.config.json || echo gone'], { quiet: true }).stdout.trim();
  must('dpkg -P: config and state gone', purge.status === 0 && gone === 'gone', gone);
  const re = g.run(['dpkg', '-i', `/root/${path.basename(d.deb2)}`]);
  must(`reinstall ehc-edge_${d.v2}`, re.status === 0, (re.stderr || 'installed').trim().slice(-200));
  // the reinstalled service fails on the missing test config (exit 2): nothing runs over the restore
  await until(g, (x) => x.ActiveState === 'failed' || x.ActiveState === 'inactive', 60);
  const r = g.run(['ehc-edge', 'restore', '--config', TEST_CONFIG, '/root/site-backup.tar.gz']);
  must('`ehc-edge restore /root/site-backup.tar.gz` (archive checked, files back with owners)', r.status === 0, `exit ${r.status}: ${(r.stdout || r.stderr).trim().replace(/\n/g, ' | ').slice(0, 300)}`);
  record('restore gave back the same card keys', sha(g, keyFile) === keys && keys !== '', `sha256 ${keys.slice(0, 16)}…`);
  const perms = g.run(['stat', '-c', '%U:%G %a %n', '/var/lib/ehc-edge', keyFile, TEST_CONFIG], { quiet: true }).stdout.trim();
  record('restored owners and modes (state ehc-edge, config root:ehc-edge 0640)', /^ehc-edge:ehc-edge \d+ \/var\/lib\/ehc-edge\n/.test(perms) && /ehc-edge:ehc-edge 600 /.test(perms) && /root:ehc-edge 640 /.test(perms), perms.replace(/\n/g, '; '));
  // the home card system is back
  writeFileSync(path.join(root, TEST_CONFIG), testConfig());
  await restartActive('restored appliance: service active');
  const audit = g.run([...asService, 'ehc-edge', 'verify-audit']);
  record('`ehc-edge verify-audit` after the restore: the chain is intact', audit.status === 0, `exit ${audit.status}: ${(audit.stdout || audit.stderr).trim().slice(0, 200)}`);
  let depth = queueDepth(g);
  for (let i = 0; i < 60 * g.slow && depth !== 0; i++) {
    await sleep(1000);
    depth = queueDepth(g);
  }
  record('the records queued before the backup are delivered after the restore (outbox depth 0)', depth === 0, `depth ${queued} → ${depth}`);
}

async function scenario(g: Guest, root: string, d: { v1: string; v2: string; deb1: string; deb2: string }) {
  out('== install');
  copyFileSync(d.deb1, path.join(root, 'root', path.basename(d.deb1)));
  copyFileSync(d.deb2, path.join(root, 'root', path.basename(d.deb2)));
  const inst = g.run(['dpkg', '-i', `/root/${path.basename(d.deb1)}`]);
  must(`dpkg -i ehc-edge_${d.v1}`, inst.status === 0, inst.status === 0 ? 'installed' : (inst.stderr || inst.stdout).slice(-500));
  if (g.emulated) {
    // qemu-user translates system calls, it does not give the guest the kernel's namespaces: systemd's
    // "Failed to set up IPC namespacing: Input/output error" (exit 226/NAMESPACE). Under emulation only,
    // a drop-in turns off the namespace and seccomp parts of the sandbox; the rest of the unit stays.
    // The sandbox itself is proven on the native systems (and a real arm64 kernel has it).
    mkdirSync(path.join(root, 'etc', 'systemd', 'system', 'ehc-edge.service.d'), { recursive: true });
    writeFileSync(
      path.join(root, 'etc', 'systemd', 'system', 'ehc-edge.service.d', '40-qemu-user-emulation.conf'),
      '[Service]\nPrivateIPC=no\nPrivateUsers=no\nRestrictNamespaces=no\nSystemCallFilter=\nSystemCallArchitectures=\nTimeoutStartSec=300s\nWatchdogSec=60s\n',
    );
    g.sh('systemctl daemon-reload; systemctl reset-failed ehc-edge; systemctl restart ehc-edge');
    out('   emulation drop-in: PrivateIPC=no PrivateUsers=no RestrictNamespaces=no, no seccomp filter, TimeoutStartSec=300s WatchdogSec=60s');
  }
  const user = g.run(['getent', 'passwd', 'ehc-edge'], { quiet: true }).stdout.trim();
  record('system user ehc-edge created (sysusers.d)', user.startsWith('ehc-edge:'), user);
  const perms = g.run(['stat', '-c', '%U:%G %a %n', '/etc/ehc-edge', '/etc/ehc-edge/appliance.config.json'], { quiet: true }).stdout.trim();
  record('config root:ehc-edge 0750/0640', /root:ehc-edge 750 \/etc\/ehc-edge\n.*root:ehc-edge 640/.test(perms), perms.replace(/\n/g, '; '));
  let s = await until(g, (x) => x.ActiveState === 'failed' || (x.ActiveState === 'active' && x.SubState === 'running'), 60);
  const refusal = g.run(['journalctl', '-u', 'ehc-edge', '--no-pager', '-o', 'cat'], { quiet: true }).stdout.split('\n').find((l) => l.includes('configuration error')) ?? '';
  record(
    'shipped site config (placeholder keys): start refused with exit 2, not restarted (RestartPreventExitStatus=2)',
    s.ActiveState === 'failed' && s.ExecMainStatus === '2' && s.NRestarts === '0' && /: his\.apiKeys\.0: still the shipped placeholder/.test(refusal),
    `${brief(s)} exit=${s.ExecMainStatus}; journal: ${refusal.trim()}`,
  );

  out('== test configuration (simulator upstream) through a drop-in');
  writeFileSync(path.join(root, TEST_CONFIG), testConfig());
  mkdirSync(path.join(root, 'etc', 'systemd', 'system', 'ehc-edge.service.d'), { recursive: true });
  writeFileSync(path.join(root, 'etc', 'systemd', 'system', 'ehc-edge.service.d', '50-system-test.conf'), '[Service]\nEnvironment=EHC_EDGE_CONFIG=/etc/ehc-edge/system-test.config.json\n');
  g.sh('chown root:ehc-edge /etc/ehc-edge/system-test.config.json && chmod 0640 /etc/ehc-edge/system-test.config.json && systemctl daemon-reload && systemctl reset-failed ehc-edge; systemctl restart ehc-edge');
  s = await until(g, (x) => x.ActiveState === 'active' || x.ActiveState === 'failed', 60);
  must('restart with test config: active', s.ActiveState === 'active', brief(s));
  record('READY=1 via sd_notify (Type=notify, NotifyAccess=main) and STATUS= text', s.Type === 'notify' && s.NotifyAccess === 'main' && s.SubState === 'running' && s.StatusText.length > 0, `Type=${s.Type} NotifyAccess=${s.NotifyAccess} WatchdogUSec=${s.WatchdogUSec} StatusText="${s.StatusText}"`);
  const mainComm = g.sh(`stat -c %U /proc/${s.MainPID}; cat /proc/${s.MainPID}/comm; tr '\\0' ' ' < /proc/${s.MainPID}/cmdline`, { quiet: true }).stdout.trim().replace(/\n/g, ' ');
  // Node 24 names its main thread MainThread (comm); the command line shows the bundled runtime (under
  // qemu-user after the binfmt interpreter)
  record('main process is the bundled node as user ehc-edge', /^ehc-edge (node|MainThread) (\/usr\/libexec\/qemu-binfmt\/\S+ \/usr\/lib\/ehc-edge\/runtime\/bin\/node )?\/usr\/lib\/ehc-edge\/runtime\/bin\/node /.test(mainComm), mainComm.slice(0, 200));

  out('== hardening');
  const sec = g.run(['systemd-analyze', 'security', '--no-pager', 'ehc-edge.service']);
  const exposure = Number(/Overall exposure level for ehc-edge\.service:\s*([\d.]+)/.exec(sec.stdout)?.[1] ?? NaN);
  if (g.emulated) out(`   exposure ${exposure} with the emulation drop-in (the sandbox is proven on the native systems)`);
  else record('systemd-analyze security exposure <= 2.0', exposure <= 2.0, `exposure ${exposure}`);
  out(`   systemd-analyze security ehc-edge: ${/Overall exposure level.*$/m.exec(sec.stdout)?.[0] ?? sec.stderr.trim()}`);
  const udevVersion = Number(g.run(['udevadm', '--version'], { quiet: true }).stdout.trim()) || 0;
  if (udevVersion >= 254) {
    const udev = g.run(['sh', '-c', 'udevadm verify /usr/lib/udev/rules.d/*ehc-edge*.rules 2>&1']);
    record('udev rules parse (udevadm verify)', udev.status === 0, udev.stdout.trim().split('\n').slice(-1)[0] ?? '');
  } else out(`   not checked here: udevadm verify needs systemd >= 254 (this guest has ${udevVersion}); the Debian 13 system checks the same rules`);
  const verifyUnit = g.run(['systemd-analyze', 'verify', 'ehc-edge.service']);
  record('systemd-analyze verify ehc-edge.service', verifyUnit.status === 0, (verifyUnit.stderr || 'no warnings').trim().split('\n').slice(0, 3).join('; '));

  out('== HIS port');
  const health = http(g, 'GET', `http://${HIS}/v1/health`);
  record('GET /v1/health', health.status === 200, `${health.status} ${health.body.slice(0, 200)}`);
  const codes = g.run(['runuser', '-u', 'ehc-edge', '--', 'env', 'EHC_EDGE_CONFIG=/etc/ehc-edge/system-test.config.json', 'ehc-edge', 'codes', '--json']);
  let code: string | undefined;
  try {
    code = (JSON.parse(codes.stdout) as Array<{ code: string }>)[0]?.code;
  } catch {
    code = undefined;
  }
  if (codes.status !== 0 || !code) {
    record('POST /v1/verify with a demo code', false, `no demo code from \`ehc-edge codes\` (exit ${codes.status}): ${(codes.stderr || codes.stdout).trim().slice(-200)}`);
  } else {
    const v = http(g, 'POST', `http://${HIS}/v1/verify`, { ehealth_code: code }, HIS_KEY);
    record('POST /v1/verify with a demo code', v.status === 200, `${v.status} ${v.body.replace(/\s+/g, ' ').slice(0, 240)}`);
    const unauth = http(g, 'POST', `http://${HIS}/v1/verify`, { ehealth_code: code });
    record('POST /v1/verify without a key is refused', unauth.status === 401 || unauth.status === 403, String(unauth.status));
  }
  const cli = g.run(['runuser', '-u', 'ehc-edge', '--', 'env', 'EHC_EDGE_CONFIG=/etc/ehc-edge/system-test.config.json', 'ehc-edge', 'status']);
  record('operator CLI: `ehc-edge status` against the running service', cli.status === 0, `exit ${cli.status}: ${(cli.stdout || cli.stderr).trim().split('\n').slice(0, 3).join(' | ').slice(0, 200)}`);
  const keyFile = '/var/lib/ehc-edge/soft-card.keys.json';
  const keyStat = g.run(['stat', '-c', '%U:%G %a', keyFile], { quiet: true }).stdout.trim();
  record('soft-card keys in the state dir, ehc-edge 0600', keyStat === 'ehc-edge:ehc-edge 600', `${keyFile}: ${keyStat || 'missing'}`);

  out('== kill -9 the main process');
  const pid1 = s.MainPID!;
  const restarts0 = Number(s.NRestarts);
  g.sh(`kill -9 ${pid1}`); // the shell's kill: minbase has no procps
  s = await until(g, (x) => x.ActiveState === 'active' && x.MainPID !== pid1 && x.MainPID !== '0' && x.SubState === 'running', 60);
  record('Restart=on-failure brings it back after SIGKILL', s.ActiveState === 'active' && s.MainPID !== pid1 && Number(s.NRestarts) === restarts0 + 1, `old pid ${pid1}; ${brief(s)}`);
  const h2 = http(g, 'GET', `http://${HIS}/v1/health`);
  record('GET /v1/health after the restart', h2.status === 200, String(h2.status));

  out('== watchdog: SIGSTOP the main process (no WATCHDOG=1 any more)');
  const pid2 = s.MainPID!;
  const restarts1 = Number(s.NRestarts);
  const since = g.run(['date', '+%Y-%m-%d %H:%M:%S'], { quiet: true }).stdout.trim();
  g.sh(`kill -STOP ${pid2}`);
  const wdSec = Number(s.WatchdogUSec?.replace(/s$/, '')) || 20;
  s = await until(g, (x) => x.ActiveState === 'active' && x.MainPID !== pid2 && x.MainPID !== '0' && x.SubState === 'running', wdSec + 60);
  const wdLog = g.run(['journalctl', '-u', 'ehc-edge', '--since', since, '--no-pager', '-o', 'cat'], { quiet: true }).stdout;
  const timeoutLine = wdLog.split('\n').find((l) => /[Ww]atchdog timeout/.test(l)) ?? '';
  record('WatchdogSec: a stopped process is killed and restarted', s.MainPID !== pid2 && Number(s.NRestarts) === restarts1 + 1 && timeoutLine !== '', `${timeoutLine.trim()}; ${brief(s)}`);

  out('== upgrade to a rebuilt package');
  // a site edit of the conffile must survive; keys and state must be untouched
  g.sh(`${GUEST_NODE} -e 'const f="/etc/ehc-edge/appliance.config.json";const c=JSON.parse(require("fs").readFileSync(f));c.site.orgName="Site edit kept across upgrade";require("fs").writeFileSync(f,JSON.stringify(c,null,2)+"\\n")'`);
  const before = { keys: sha(g, keyFile), conf: sha(g, '/etc/ehc-edge/appliance.config.json'), state: g.run(['sh', '-c', 'cd /var/lib/ehc-edge && ls -A | sort | tr "\\n" " "'], { quiet: true }).stdout.trim() };
  const pid3 = s.MainPID!;
  const up = g.run(['dpkg', '-i', `/root/${path.basename(d.deb2)}`]);
  must(`dpkg -i ehc-edge_${d.v2} (upgrade from ${d.v1})`, up.status === 0, up.status === 0 ? 'upgraded' : (up.stderr || up.stdout).slice(-500));
  const version = g.run(['dpkg-query', '-W', '-f=${Version}', 'ehc-edge'], { quiet: true }).stdout.trim();
  s = await until(g, (x) => x.ActiveState === 'active' && x.MainPID !== pid3 && x.SubState === 'running', 60);
  record('upgrade restarted the service', s.ActiveState === 'active' && s.MainPID !== pid3 && version === d.v2, `version ${version}; old pid ${pid3}; ${brief(s)}`);
  const after = { keys: sha(g, keyFile), conf: sha(g, '/etc/ehc-edge/appliance.config.json') };
  record('upgrade kept the keys file', before.keys !== '' && before.keys === after.keys, `sha256 ${before.keys.slice(0, 16)}…`);
  record('upgrade kept the edited conffile (no prompt)', before.conf === after.conf, `sha256 ${before.conf.slice(0, 16)}…`);
  const stateAfter = g.run(['sh', '-c', 'cd /var/lib/ehc-edge && ls -A | sort | tr "\\n" " "'], { quiet: true }).stdout.trim();
  record('upgrade kept the state dir', before.state !== '' && before.state.split(' ').every((f) => stateAfter.split(' ').includes(f)), `before: ${before.state}; after: ${stateAfter}`);
  const h3 = http(g, 'GET', `http://${HIS}/v1/health`);
  record('GET /v1/health after the upgrade', h3.status === 200, String(h3.status));

  await backupCycle(g, root, d, keyFile);

  out('== remove, then purge');
  const rmSince = g.run(['date', '+%Y-%m-%d %H:%M:%S'], { quiet: true }).stdout.trim();
  const rm = g.run(['dpkg', '-r', 'ehc-edge']);
  s = show(g);
  const stopLog = g.run(['journalctl', '-u', 'ehc-edge', '--since', rmSince, '--no-pager', '-o', 'cat'], { quiet: true }).stdout;
  const stopLines = stopLog.split('\n').filter((l) => /"msg":"(stopping|stopped)"|Stopping ehc-edge|Stopped ehc-edge|Deactivated successfully/.test(l));
  record('SIGTERM → the app logs stopping/stopped and systemd sees a clean exit', stopLines.some((l) => l.includes('"msg":"stopped"')) && stopLines.some((l) => /Deactivated successfully|Stopped ehc-edge/.test(l)), stopLines.map((l) => l.replace(/^\{"time":"[^"]*",/, '{').slice(0, 90)).join(' | '));
  record('dpkg -r stops the service cleanly (STOPPING=1, exit 0 within TimeoutStopSec)', rm.status === 0 && s.ActiveState !== 'active' && (s.Result === 'success' || s.Result === '') && s.ExecMainStatus === '0', `${s.ActiveState} Result=${s.Result} ExecMainCode=${s.ExecMainCode} ExecMainStatus=${s.ExecMainStatus}`);
  const kept = g.run(['sh', '-c', 'test -d /var/lib/ehc-edge && test -f /etc/ehc-edge/appliance.config.json && echo kept'], { quiet: true }).stdout.trim();
  record('remove keeps config and state', kept === 'kept', kept || 'gone');
  const purge = g.run(['dpkg', '-P', 'ehc-edge']);
  const gone = g.run(['sh', '-c', 'for p in /var/lib/ehc-edge /etc/ehc-edge /usr/lib/ehc-edge /usr/lib/systemd/system/ehc-edge.service; do test -e $p && echo "left: $p"; done; true'], { quiet: true }).stdout.trim();
  record('dpkg -P purges config and state', purge.status === 0 && gone === '', gone || '/var/lib/ehc-edge, /etc/ehc-edge, /usr/lib/ehc-edge gone');
}

/** one system of the matrix: its own log in test-output/, its own results */
async function runSystem(sys: System): Promise<{ sys: System; passed: number; failed: number; seconds: number; log: string }> {
  const started = Date.now();
  startLog(path.join(outDir, `system-test-${sys.id}.log`), `${sys.id} (Debian ${sys.debian} ${sys.suite}, ${sys.arch}${sys.arch !== hostArch() ? ', qemu-user emulation' : ''})`);
  results.length = 0;
  out(`=== system ${sys.id}: Debian ${sys.debian} (${sys.suite}) ${sys.arch}`);
  let guest: Guest | null = null;
  try {
    preflight(sys);
    const debs = buildDebs(sys.arch);
    const root = guestRoot(sys);
    guest = await boot(root, sys);
    await scenario(guest, root, debs);
  } catch (err) {
    if (!(err instanceof Abort)) record('unexpected error', false, String((err as Error).stack ?? err));
    else if (!results.some((r) => !r.ok)) record(err.message, false);
  } finally {
    if (guest) {
      out('== shutdown guest');
      await shutdown(guest);
    }
  }
  const failed = results.filter((r) => !r.ok).length;
  const seconds = Math.round((Date.now() - started) / 1000);
  out(`\nsystem test ${sys.id}: ${results.length - failed} passed, ${failed} failed (${seconds} s); log: ${path.relative(repo, logFile)}`);
  return { sys, passed: results.length - failed, failed, seconds, log: path.relative(repo, logFile) };
}

async function main() {
  const started = Date.now();
  const runs = [];
  for (const sys of matrix) runs.push(await runSystem(sys));
  startLog(path.join(outDir, 'system-test.log'), `summary of ${matrix.map((s) => s.id).join(', ')}`);
  for (const r of runs) out(`${r.failed ? 'FAIL' : 'PASS'}  ${r.sys.id}: ${r.passed} passed, ${r.failed} failed, ${r.seconds} s (${r.log})`);
  const failed = runs.reduce((n, r) => n + r.failed, 0);
  out(`\nsystem test matrix: ${runs.length} system(s), ${failed} failed step(s) (${Math.round((Date.now() - started) / 1000)} s)`);
  process.exit(failed || runs.length === 0 ? 1 : 0);
}

await main();

