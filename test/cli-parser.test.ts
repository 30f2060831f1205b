import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import stringWidth from 'string-width';
import { buildProgram, COMMANDS } from '../tools/ehc-edge.ts';
import { captureCli } from './helpers/cli-capture.ts';
import { MAN_FILE, manPage } from '../tools/man.ts';
import { EXIT, EXIT_CODES, table } from '../tools/lib/cli.ts';

/** Runs the dispatcher in-process and collects what it printed (EHC_EDGE_LANG as given while it runs). */
const capture = (argv: string[], lang?: 'en') => captureCli(argv, lang ? { EHC_EDGE_LANG: lang } : {});

function leaves(cmd: Command, path: string[] = []): Array<{ path: string[]; cmd: Command }> {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  if (!subs.length) return [{ path, cmd }];
  return subs.flatMap((c) => leaves(c, [...path, c.name()]));
}

test('every registered command is defined by its module under the registered name', async () => {
  const { program, unavailable } = await buildProgram();
  assert.equal([...unavailable.keys()], [], 'every module of this build loads');
  assert.equal(
    program.commands.map((c) => c.name()).filter((n) => n !== 'help'),
    Object.keys(COMMANDS),
  );
});

test('--help works for every command and subcommand, exits 0 and lists the exit codes; every command takes --json', async () => {
  const { program } = await buildProgram();
  const all = leaves(program);
  assert.ok(all.length >= 14, `${all.length} commands`);
  for (const { path, cmd } of all) {
    const r = await capture([...path, '--help', '--lang', 'en']);
    assert.is(r.code, EXIT.OK, `${path.join(' ')} --help: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`Usage: ehc-edge ${path.join(' ')}`), `${path.join(' ')}: ${r.stdout.slice(0, 80)}`);
    for (const [code] of EXIT_CODES) assert.match(r.stdout, new RegExp(`\\n  ${code}  `), `${path.join(' ')} --help lists exit code ${code}`);
    assert.ok(cmd.options.some((o) => o.long === '--json'), `${path.join(' ')} takes --json`);
  }
  for (const group of ['', 'card', 'queue', 'scanners']) {
    const r = await capture(group ? [group, '--help', '--lang', 'en'] : ['--help', '--lang', 'en']);
    assert.is(r.code, EXIT.OK);
    assert.match(r.stdout, /Commands:/);
  }
});

test('usage errors exit 2 with a one-line reason and no stack trace', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['status', '--bogus'], /unknown option '--bogus'/],
    [['verify'], /missing required argument 'code'/],
    [['card', 'import', '--role', 'mac'], /required option '--keyfile <file>' not specified/],
    [['codes', '--count', 'many'], /--count wants 1\.\.10000/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['card'], /Usage: ehc-edge card/],
    [[], /Usage: ehc-edge/],
  ];
  for (const [argv, message] of cases) {
    const r = await capture(argv, 'en');
    assert.is(r.code, EXIT.USAGE, argv.join(' '));
    assert.match(r.stderr, message, argv.join(' '));
    assert.not.match(r.stderr, /\n\s+at /, `${argv.join(' ')}: no stack trace`);
  }
});

test('--json: a command that fails prints the error as JSON on stdout, with its exit code', async () => {
  const r = await capture(['status', '--json', '--url', 'http://127.0.0.1:1']);
  assert.is(r.code, EXIT.UNREACHABLE);
  assert.equal(Object.keys(JSON.parse(r.stdout)), ['error', 'exit_code']);
  assert.is(JSON.parse(r.stdout).exit_code, 3);
});

test('tables measure CJK text in terminal cells (two per character)', () => {
  const t = table([['演示医院挂号处', 'open'], ['Desk 1', 'unplugged']], ['scanner', 'state']).split('\n');
  const col = (line: string) => stringWidth(line.slice(0, line.search(/(open|unplugged|state)$/)));
  assert.is(col(t[0]!), col(t[1]!));
  assert.is(col(t[1]!), col(t[2]!));
  assert.is(col(t[1]!), stringWidth('演示医院挂号处') + 2);
});

test('the shipped man page is the one generated from the command definitions (npm run man)', async () => {
  const page = await manPage();
  assert.is(readFileSync(MAN_FILE, 'utf8'), page, 'packaging/ehc-edge.1 is stale: run npm run man');
  const { program } = await buildProgram();
  for (const { path } of leaves(program)) assert.ok(page.includes(`.SS ${path.join(' ').replace(/-/g, '\\-')}\n`), `man page has ${path.join(' ')}`);
  assert.not.match(page, /^\.B scan$/m, 'no command that does not exist');
});

test.run();
