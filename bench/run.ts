/**
 * npm run bench: runs every bench/<name>.ts that exports `run()` (or those named on the command line)
 * one after the other and prints their figures as one JSON document.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const names = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.includes('-child'))
  .map((f) => f.slice(0, -3))
  .filter((n) => wanted.length === 0 || wanted.includes(n));
const results: Record<string, unknown> = {};
for (const name of names) {
  const mod = (await import(pathToFileURL(path.join(here, `${name}.ts`)).href)) as { run?: () => Promise<Record<string, unknown>> };
  if (typeof mod.run !== 'function') continue;
  process.stderr.write(`== bench ${name}\n`);
  results[name] = await mod.run();
}
console.log(JSON.stringify(results, null, 2));
