#!/usr/bin/env -S node --import=tsx
/**
 * ehc-edge — the operator CLI. `ehc-edge <command> [options]`; every command takes --json and
 * --config PATH (else EHC_EDGE_CONFIG, else ./appliance.config.json) and ends with
 *   0 ok · 1 a failure was found · 2 usage or configuration error · 3 appliance unreachable.
 *
 * Each command is its own module under tools/ exporting `async function main(argv): Promise<number>`;
 * this dispatcher only finds and runs it. A command whose module is not part of this build says so
 * (exit 2) instead of failing on import.
 *
 * The shebang resolves tsx from the working directory (fine for `npx ehc-edge` in the project); an
 * installed copy needs a wrapper: `exec node --import=<prefix>/node_modules/tsx/dist/esm/index.mjs
 * <prefix>/tools/ehc-edge.ts "$@"`. (`--import=tsx`, not `--import tsx`: tsx's import scanner misreads
 * the latter in a shebang line.)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, isEntry } from './lib/cli.ts';

export interface CommandEntry {
  module: string;
  summary: string;
}

export const COMMANDS: Record<string, CommandEntry> = {
  status: { module: './status.ts', summary: 'appliance health: card, upstream/VPN, outbox, scanners, errors' },
  scanners: { module: './scanners.ts', summary: 'scanners of the appliance or plugged into this machine; inject a scan' },
  card: { module: './card-keys.ts', summary: 'crypto card keys: show, import, wrap' },
  queue: { module: './queue.ts', summary: 'the outbox: depth, oldest, dead records, replay' },
  'verify-audit': { module: './verify-audit.ts', summary: 'check the audit chain and name the first broken record' },
  stats: { module: './stats.ts', summary: 'usage statistics (附录E usecard_scene_list, read_term_list), JSON export' },
  codes: { module: './codes.ts', summary: 'demo health codes for testing a desk' },
  verify: { module: './verify.ts', summary: 'verify one code through the running appliance' },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'usage: ehc-edge <command> [--json] [--config PATH] [options]',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'exit codes: 0 ok, 1 failure found, 2 usage/config error, 3 appliance unreachable',
    "`ehc-edge <command> --help` for a command's options",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    (name ? console.log : console.error)(usage());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    console.error(`ehc-edge: unknown command '${name}'\n\n${usage()}`);
    return EXIT.USAGE;
  }
  // the compiled build (dist/, the package) has each command's .js where the sources have its .ts
  const ext = path.extname(fileURLToPath(import.meta.url));
  const file = fileURLToPath(new URL(entry.module.replace(/\.ts$/, ext), import.meta.url));
  if (!existsSync(file)) {
    console.error(`ehc-edge ${name}: not available in this build`);
    return EXIT.USAGE;
  }
  const mod = (await import(file)) as { main?: (argv: string[]) => Promise<number> };
  if (typeof mod.main !== 'function') {
    console.error(`ehc-edge ${name}: not available in this build (${entry.module} exports no main)`);
    return EXIT.USAGE;
  }
  return mod.main(rest);
}

if (isEntry(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`ehc-edge: ${err.stack ?? err.message}`);
      process.exit(EXIT.FAILURE);
    },
  );
}
