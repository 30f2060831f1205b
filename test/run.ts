/**
 * Runs every uvu suite under test/ (files ending in .test.ts) in one uvu process and closes with the
 * plain summary line CI reads: `tests: N passed, N failed, N skipped`.
 * `npm test -- <pattern>` runs only the suites whose path matches the pattern.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pattern = process.argv[2] ? `(${process.argv[2]})[^/]*\\.test\\.ts$` : '\\.test\\.ts$';
const uvuBin = path.join(root, 'node_modules', 'uvu', 'bin.js');
const child = spawn(process.execPath, ['--import', 'tsx', '--import', path.join(root, 'test', 'helpers', 'handle-report.ts'), uvuBin, 'test', pattern], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, EHC_LOG_LEVEL: process.env.EHC_LOG_LEVEL ?? 'warn' },
});
// eslint-disable-next-line no-control-regex
const plainText = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
let tail = '';
// every FAIL block uvu prints (name, message, first lines of detail), recapped just above the closing
// line: CI keeps only the end of a long output, and a failure printed mid-run would be out of sight
const failures: string[] = [];
let pending = '';
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  const text = chunk.toString('utf8');
  tail = (tail + text).slice(-4000);
  pending += text;
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) collectFailure(line);
  // uvu prints its summary when every suite has run; a handle a test forgot (a socket, a timer) can
  // keep its process alive after that. The counts are final then: report them, say so, and stop it.
  if (!lingering && /Duration:\s+[\d.]+m?s/.test(plainText(tail))) {
    summary = tail; // the counts, kept before anything printed later can push them out of the tail
    lingering = setTimeout(() => {
      console.log('warning: the test process did not exit 20 s after its summary (a test left a handle open); what keeps it alive:');
      child.kill('SIGUSR2');
      setTimeout(() => {
        forced = true;
        child.kill('SIGKILL');
      }, 1_000);
    }, 20_000);
  }
});
let recapLeft = 0;
let currentFile = '';
function collectFailure(raw: string): void {
  const line = plainText(raw);
  if (/^\S+\.test\.ts$/.test(line.trim())) currentFile = line.trim();
  if (/^\s*FAIL\s/.test(line)) {
    failures.push(`${currentFile}: ${line.trim()}`);
    recapLeft = 6;
  } else if (recapLeft > 0 && line.trim()) {
    failures.push(`    ${line.trim().slice(0, 300)}`);
    recapLeft--;
  }
}
let lingering: NodeJS.Timeout | undefined;
let summary: string | undefined;
let forced = false;
child.on('close', (rawCode) => {
  if (lingering) clearTimeout(lingering);
  const code = forced ? null : rawCode;
  const plain = plainText(summary ?? tail);
  const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(plain)?.[1] ?? NaN);
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped') || 0;
  if (Number.isNaN(total) || Number.isNaN(passed)) {
    console.log('tests: 0 passed, 1 failed (the uvu run did not finish with a summary)');
    process.exit(code || 1);
  }
  // uvu's Total counts the tests that ran: skipped ones are not in it
  const failed = total - passed;
  if (failures.length) console.log(`failed tests (recap):\n  ${failures.join('\n  ')}`);
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(code ?? (failed > 0 ? 1 : 0));
});
