#!/usr/bin/env -S node --import=tsx
/**
 * ehc-edge — the operator CLI. `ehc-edge <command> [options]`; every command takes --help, --json and
 * --config PATH (else EHC_EDGE_CONFIG, else ./appliance.config.json) and ends with
 *   0 ok · 1 a failure was found · 2 usage or configuration error · 3 appliance unreachable.
 *
 * One argument parser for every command: commander (tools/lib/cli.ts). Each command is its own module
 * under tools/ exporting `command()` (its definition: options, arguments, help, work) and `main(argv)`;
 * this dispatcher loads the one asked for (all of them for --help and the man page, tools/man.ts). A
 * command whose module is not part of this build says so (exit 2) instead of failing on import.
 *
 * To add a command: a module with `export function command() { return act(defineCommand(…), …) }`, one
 * line in COMMANDS, then `npm run man` (a test keeps packaging/ehc-edge.1 equal to the definitions).
 * Every help text is given in both languages, `tr('中文', 'English')`, and every error reason too,
 * `new CliError(code, '中文', 'English')` (test/cli-lang.test.ts fails on one without its Chinese); the
 * run's language is decided once, from argv and env, before the tree is built.
 *
 * The shebang resolves tsx from the working directory (fine for `npx ehc-edge` in the project); an
 * installed copy needs a wrapper: `exec node --import=<prefix>/node_modules/tsx/dist/esm/index.mjs
 * <prefix>/tools/ehc-edge.ts "$@"`. (`--import=tsx`, not `--import tsx`: tsx's import scanner misreads
 * the latter in a shebang line.)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { configureParser, EXIT, exitCodesHelp, isEntry, runCli, tr, useLang, type Lang } from './lib/cli.ts';

export interface CommandEntry {
  /** The module defining the command, relative to this file. */
  module: string;
}

/** Every command, in the order --help and the man page list them. */
export const COMMANDS: Record<string, CommandEntry> = {
  status: { module: './status.ts' },
  scanners: { module: './scanners.ts' },
  card: { module: './card-keys.ts' },
  queue: { module: './queue.ts' },
  admin: { module: './admin.ts' },
  'verify-audit': { module: './verify-audit.ts' },
  stats: { module: './stats.ts' },
  codes: { module: './codes.ts' },
  verify: { module: './verify.ts' },
  dialect: { module: './dialect.ts' },
  backup: { module: './backup.ts' },
  restore: { module: './restore.ts' },
};

export const PROGRAM_SUMMARY = 'operator command line of the ehc-edge health card appliance (电子健康卡)';
const PROGRAM_SUMMARY_ZH = 'ehc-edge 电子健康卡设备的运维命令行';

type CommandModule = { command?: () => Command };

/** The command defined by COMMANDS[name]'s module, or why it is not available. */
async function loadCommand(name: string): Promise<Command | string> {
  const entry = COMMANDS[name]!;
  // the compiled build (dist/, the package) has each command's .js where the sources have its .ts
  const file = fileURLToPath(new URL(entry.module.replace(/\.ts$/, path.extname(fileURLToPath(import.meta.url))), import.meta.url));
  if (!existsSync(file)) return tr('此版本中没有这个命令', 'not available in this build');
  const mod = (await import(file)) as CommandModule;
  if (typeof mod.command !== 'function') return tr(`此版本中没有这个命令（${entry.module} 没有导出 command）`, `not available in this build (${entry.module} exports no command)`);
  const cmd = mod.command();
  if (cmd.name() !== name) throw new Error(`${entry.module} defines '${cmd.name()}', registered as '${name}'`);
  return cmd;
}

/**
 * The whole command tree (or only `only`), as --help, the dispatcher and the man page see it; its texts
 * in `lang` when given (the man page: en), else in the language the run decided (useLang).
 */
export async function buildProgram(only?: string, lang?: Lang): Promise<{ program: Command; unavailable: Map<string, string> }> {
  if (lang) useLang(lang);
  const program = configureParser(new Command('ehc-edge'), { group: true })
    .summary(tr(PROGRAM_SUMMARY_ZH, PROGRAM_SUMMARY))
    .description(
      tr(
        '查看并操作运行中的设备及其状态：健康状况、扫码器、待上传队列、密码卡、审计链、用卡统计、演示码。设备本身以 ehc-edge.service 运行（systemctl status ehc-edge；journalctl -u ehc-edge）。显示的时间为北京时间 (Asia/Shanghai)。',
        'Talks to the running appliance and its state: health, scanners, the outbox, the crypto card, the audit chain, usage statistics, demonstration codes. The appliance itself runs as ehc-edge.service (systemctl status ehc-edge; journalctl -u ehc-edge). Times shown are China Standard Time (Asia/Shanghai).',
      ),
    )
    .usage('<command> [options]')
    .addHelpText('after', exitCodesHelp() + tr('\n`ehc-edge <命令> --help` 查看命令的选项（--lang en：英文）\n', "\n`ehc-edge <command> --help` for a command's options (--lang zh: in Chinese)\n"));
  const unavailable = new Map<string, string>();
  for (const name of Object.keys(COMMANDS)) {
    if (only !== undefined && name !== only) continue;
    const cmd = await loadCommand(name);
    if (typeof cmd === 'string') unavailable.set(name, cmd);
    else program.addCommand(cmd);
  }
  return { program, unavailable };
}

export async function main(argv: string[]): Promise<number> {
  useLang(argv);
  const name = argv[0];
  const asked = name !== undefined && Object.hasOwn(COMMANDS, name) ? name : undefined;
  const { program, unavailable } = await buildProgram(asked);
  if (asked && unavailable.has(asked)) {
    console.error(`ehc-edge ${asked}: ${unavailable.get(asked)}`);
    return EXIT.USAGE;
  }
  if (name === undefined) {
    program.outputHelp({ error: true });
    return EXIT.USAGE;
  }
  if (name === 'help' && argv.length === 1) argv = ['--help'];
  return runCli(program, argv);
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
