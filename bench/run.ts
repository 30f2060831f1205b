/**
 * `npm run bench`: every benchmark in bench/ that exports `run()`, one after another (never in
 * parallel: they share 2 cores), figures printed and written to bench/results.json for the README.
 * `npm run bench -- verify crypto` runs only those.
 */
import { readdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const names = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'lib.ts'].includes(f))
  .map((f) => f.replace(/\.ts$/, ''))
  .filter((n) => only.length === 0 || only.includes(n))
  .sort();
const resultsFile = path.join(here, 'results.json');
const results: Record<string, unknown> = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : {};
const machine = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), load_before: os.loadavg().map((l) => +l.toFixed(2)) };
console.log(`bench: ${names.join(', ')} on ${machine.cpus} × ${machine.cpu}, node ${machine.node}, load ${machine.load_before.join(' ')}`);
let failed = 0;
for (const name of names) {
  const mod = (await import(path.join(here, `${name}.ts`))) as { run?: () => Promise<Record<string, unknown>> };
  if (typeof mod.run !== 'function') continue;
  console.log(`\n== ${name}`);
  const started = performance.now();
  try {
    const r = await mod.run();
    results[name] = { machine, seconds: +((performance.now() - started) / 1000).toFixed(1), ...r };
    console.log(JSON.stringify(r, null, 2));
  } catch (err) {
    failed++;
    console.error(`${name} failed: ${(err as Error).stack ?? err}`);
  }
}
writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
console.log(`\nbench: results written to ${path.relative(process.cwd(), resultsFile)}`);
process.exit(failed ? 1 : 0);
