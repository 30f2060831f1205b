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
const child = spawn(process.execPath, ['--import', 'tsx', uvuBin, 'test', pattern], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, EHC_LOG_LEVEL: process.env.EHC_LOG_LEVEL ?? 'warn' },
});
let tail = '';
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString('utf8')).slice(-4000);
  // uvu prints its summary when every suite has run; a handle a test forgot (a socket, a timer) can
  // keep its process alive after that. The counts are final then: report them, say so, and stop it.
  // eslint-disable-next-line no-control-regex
  if (!lingering && /Duration:\s+[\d.]+m?s/.test(tail.replace(/\x1b\[[0-9;]*m/g, ''))) {
    lingering = setTimeout(() => {
      console.log('warning: the test process did not exit 20 s after its summary (a test left a handle open); stopping it');
      forced = true;
      child.kill('SIGKILL');
    }, 20_000);
  }
});
let lingering: NodeJS.Timeout | undefined;
let forced = false;
child.on('close', (rawCode) => {
  if (lingering) clearTimeout(lingering);
  const code = forced ? null : rawCode;
  // eslint-disable-next-line no-control-regex
  const plain = tail.replace(/\x1b\[[0-9;]*m/g, '');
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
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(code ?? (failed > 0 ? 1 : 0));
});
