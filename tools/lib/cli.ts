/**
 * What every `ehc-edge` subcommand shares: the argument parser (commander), the common options, exit
 * codes, config loading, talking to the running appliance over the HIS port, progress lines on stderr,
 * tables whose columns are measured in terminal cells (CJK characters are two wide), and the language of
 * a run: zh-CN unless --lang en / EHC_EDGE_LANG=en / an English LANG, decided once (useLang) for the
 * help texts, the output and the error lines alike (tr; CliError takes both texts; commander's own usage
 * errors are translated where they are printed, commanderErrorZh).
 *
 * Exit codes: 0 ok · 1 a failure was found (unhealthy component, broken audit chain …) · 2 usage or
 * configuration error (bad flag, unreadable config, refused key) · 3 appliance unreachable.
 *
 * A subcommand is a module under tools/ exporting `command(): Command` (built with `defineCommand`, its
 * work in `act`) and `main(argv)` (= `runCli(command(), argv)`). The dispatcher, `--help` and the man page
 * (tools/man.ts) all read the same definitions.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Help, type Argument, type Option } from 'commander';
import stringWidth from 'string-width';
import { ConfigError, configPathFrom, loadConfig } from '../../src/config/load.ts';
import type { ApplianceConfig } from '../../src/config/schema.ts';
import { EhcError } from '../../src/errors.ts';

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, UNREACHABLE: 3 } as const;

/** The exit codes every command uses, for --help and the man page (English; EXIT_CODES_ZH in Chinese). */
export const EXIT_CODES: ReadonlyArray<readonly [number, string]> = [
  [EXIT.OK, 'ok'],
  [EXIT.FAILURE, 'a failure was found (a component needs attention, a broken audit chain, a rejected code)'],
  [EXIT.USAGE, 'usage or configuration error (unknown option, bad value, unreadable config, refused key)'],
  [EXIT.UNREACHABLE, 'the appliance is not reachable on its HIS port'],
];
export const EXIT_CODES_ZH: ReadonlyArray<readonly [number, string]> = [
  [EXIT.OK, '正常'],
  [EXIT.FAILURE, '发现问题（有组件需要处理、审计链损坏、码被拒绝）'],
  [EXIT.USAGE, '用法或配置错误（未知选项、取值错误、配置不可读、密钥被拒绝）'],
  [EXIT.UNREACHABLE, '无法通过 HIS 端口连接设备'],
];

/** Options every subcommand takes. */
export interface CommonOptions {
  json?: boolean;
  config?: string;
  url?: string;
  key?: string;
  quiet?: boolean;
}

export type Lang = 'zh' | 'en';

/** zh-CN unless --lang en, EHC_EDGE_LANG=en or a LANG/LC_ALL that is not Chinese and says English. */
export function langFrom(opt: string | undefined, env: NodeJS.ProcessEnv = process.env): Lang {
  const pick = (v: string | undefined) => (v === undefined ? undefined : /^en/i.test(v) ? 'en' : /^zh/i.test(v) ? 'zh' : undefined);
  return pick(opt) ?? pick(env.EHC_EDGE_LANG) ?? (/^en/i.test(env.LC_ALL ?? env.LANG ?? '') ? 'en' : 'zh');
}

/** The value of --lang in an argv (`--lang en` or `--lang=en`; the last one, none after `--`). */
export function langArg(argv: readonly string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--lang') value = argv[++i];
    else if (a.startsWith('--lang=')) value = a.slice('--lang='.length);
  }
  return value;
}

let runLang: Lang | undefined;

/**
 * Decides the language of this run — help texts and output alike — once, before its commands are built:
 * from the argv's --lang and the environment (langFrom's rule), or a given language (the man page: en).
 * runCli and the dispatcher call it; commands read the decision with cliLang() / tr().
 */
export function useLang(from: readonly string[] | Lang, env: NodeJS.ProcessEnv = process.env): Lang {
  runLang = typeof from === 'string' ? from : langFrom(langArg(from), env);
  return runLang;
}

/** The language of this run (as useLang decided; before that, from process.argv and the environment). */
export function cliLang(): Lang {
  return runLang ?? useLang(process.argv.slice(2));
}

/** A text in the language of this run: `tr('中文', 'English')`. */
export function tr(zh: string, en: string): string {
  return cliLang() === 'zh' ? zh : en;
}

/**
 * The --lang option every command and group takes (a common option; it also picks the language of --help).
 * Who parses it does not matter: the run's language is decided from the argv before parsing (useLang).
 */
export const LANG_FLAGS = '--lang <zh|en>';
const langHelp = () => tr('输出与帮助的语言（默认：zh；或 EHC_EDGE_LANG / 英文的 LANG）', 'language of the output and the help (default: zh, or EHC_EDGE_LANG / an English LANG)');

const TITLES_ZH: Record<string, string> = { 'Usage:': '用法:', 'Arguments:': '参数:', 'Options:': '选项:', 'Commands:': '命令:', 'Global Options:': '全局选项:' };
const zhExtras = (text: string) => text.replace(/\((default|choices|preset|env): /g, (_, k: string) => `(${({ default: '默认', choices: '可选', preset: '预设', env: '环境变量' } as Record<string, string>)[k]}: `);

const RESULT = Symbol('ehc-edge exit code');
type WithResult = Command & { [RESULT]?: number };

const CJK = '\u2e80-\u2fff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff';
const OPENING = '（「『【《〈“‘';
const CLOSING = '，。、；：！？）」』】》〉”’';
/** What a help line may break before: each CJK character (its punctuation kept on its side) or a space-delimited word. */
const WRAP_CHUNK = new RegExp(`\\s*(?:[${OPENING}]*[${CJK}][${CLOSING}]*|[${OPENING}]*[^\\s${CJK}${OPENING}${CLOSING}]+[${CLOSING}]*|[${OPENING}${CLOSING}]+)`, 'gu');

/**
 * Help text wrapped to `width` terminal cells, as commander's boxWrap does, except that a line may also
 * break between two CJK characters (Chinese has no spaces; punctuation never starts a line).
 */
export function wrapCells(text: string, width: number): string {
  return text
    .split(/\r\n|\n/)
    .map((line) => {
      const chunks = line.match(WRAP_CHUNK);
      if (!chunks) return '';
      const lines: string[] = [];
      let current = chunks.shift()!;
      for (const chunk of chunks) {
        if (stringWidth(current) + stringWidth(chunk) <= width) current += chunk;
        else {
          lines.push(current);
          current = chunk.trimStart();
        }
      }
      lines.push(current);
      return lines.join('\n');
    })
    .join('\n');
}

const quoted = (what: string) => what.replace(/^option '/, "选项 '").replace(/^environment variable '/, "环境变量 '");
const suggestionZh = (s: string) =>
  s.replace(/\n\(Did you mean one of (.+)\?\)$/, '\n（是否想用其中之一：$1？）').replace(/\n\(Did you mean (.+)\?\)$/, '\n（是否想用 $1？）');
/** commander's usage errors, each as its message reads (commander 14), and their Chinese. */
const COMMANDER_ZH: Array<[RegExp, (...m: string[]) => string]> = [
  [/^error: unknown option '(.+?)'((?:\n\(Did you mean .+\?\))?)$/s, (f, s) => `错误：未知选项 '${f}'${suggestionZh(s)}`],
  [/^error: unknown command '(.+?)'((?:\n\(Did you mean .+\?\))?)$/s, (c, s) => `错误：未知命令 '${c}'${suggestionZh(s)}`],
  [/^error: missing required argument '(.+)'$/, (a) => `错误：缺少必需的参数 '${a}'`],
  [/^error: option '(.+)' argument missing$/, (o) => `错误：选项 '${o}' 缺少取值`],
  [/^error: required option '(.+)' not specified$/, (o) => `错误：未给出必需的选项 '${o}'`],
  [/^error: too many arguments(?: for '(.+)')?\. Expected (\d+) arguments? but got (\d+)\.$/, (c, n, got) => `错误：${c ? `'${c}' 的` : ''}参数过多：应为 ${n} 个，实际 ${got} 个`],
  [/^error: ((?:option|environment variable) '.+') cannot be used with ((?:option|environment variable) '.+')$/, (a, b) => `错误：${quoted(a)} 不能与 ${quoted(b)} 同时使用`],
  [/^error: option '(.+)' argument '(.*)' is invalid\.(.*)$/s, (o, v, why) => `错误：选项 '${o}' 的取值 '${v}' 无效。${choicesZh(why)}`],
  [/^error: option '(.+)' value '(.*)' from env '(.+)' is invalid\.(.*)$/s, (o, v, e, why) => `错误：选项 '${o}' 取自环境变量 '${e}' 的值 '${v}' 无效。${choicesZh(why)}`],
  [/^error: command-argument value '(.*)' is invalid for argument '(.+)'\.(.*)$/s, (v, a, why) => `错误：参数 '${a}' 的取值 '${v}' 无效。${choicesZh(why)}`],
];
function choicesZh(why: string): string {
  const m = /^ Allowed choices are (.+)\.$/.exec(why);
  return m ? `可选值：${m[1]}` : why.trim();
}

/**
 * A usage error of commander's (unknown option, missing argument, too many arguments, invalid choice …)
 * in Chinese; one this does not know (a newer commander's) stays as commander wrote it.
 */
export function commanderErrorZh(text: string): string {
  const message = text.replace(/\n$/, '');
  for (const [pattern, zh] of COMMANDER_ZH) {
    const m = pattern.exec(message);
    if (m) return zh(...m.slice(1).map((x) => x ?? '')) + (text.endsWith('\n') ? '\n' : '');
  }
  return text;
}

/**
 * Parser settings shared by every command of the tree: errors as exceptions, CJK-aware help columns, help
 * in the run's language (commander's own headings and `(default: …)` too); `group`: it has subcommands.
 */
export function configureParser(cmd: Command, { group = false }: { group?: boolean } = {}): Command {
  const zh = cliLang() === 'zh';
  cmd
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(cliLang() === 'zh' ? commanderErrorZh(s) : s),
    })
    .configureHelp({
      displayWidth: (s) => stringWidth(s),
      minWidthToWrap: 24, // commander's 40 leaves a long Chinese text unwrapped beside long option terms
      boxWrap(this: Help, str: string, width: number) {
        return width < this.minWidthToWrap ? str : wrapCells(str, width);
      },
      sortSubcommands: false,
      ...(zh
        ? {
            styleTitle: (t: string) => TITLES_ZH[t] ?? t,
            optionDescription: (o: Option) => zhExtras(Help.prototype.optionDescription.call(new Help(), o)),
            argumentDescription: (a: Argument) => zhExtras(Help.prototype.argumentDescription.call(new Help(), a)),
          }
        : {}),
    })
    .helpOption('-h, --help', tr('显示帮助', 'display help for command'))
    .showSuggestionAfterError(true);
  if (group) cmd.option(LANG_FLAGS, langHelp()).helpCommand('help [command]', tr('显示某个命令的帮助', 'display help for command'));
  return cmd;
}

/** Help text listing the exit codes (appended to every command's --help), in the run's language. */
export function exitCodesHelp(): string {
  const codes = cliLang() === 'zh' ? EXIT_CODES_ZH : EXIT_CODES;
  return `\n${tr('退出码:', 'Exit codes:')}\n` + codes.map(([c, m]) => `  ${c}  ${m}`).join('\n') + '\n';
}

/**
 * A leaf command with the common options (--json, --config, --url, --key, --quiet, --lang, --help). Add
 * its own options and arguments, then its work with `act`. Texts in the run's language: pass tr(zh, en).
 */
export function defineCommand(name: string, summary: string, description?: string, { his = true, keyHelp }: { his?: boolean; keyHelp?: string } = {}): Command {
  const cmd = configureParser(new Command(name))
    .summary(summary)
    .description(description ?? summary)
    .option('--json', tr('在 stdout 输出 JSON（错误也是：{"error": …, "exit_code": …}）', 'print JSON on stdout (errors too: {"error": …, "exit_code": …})'))
    .option('--config <path>', tr('设备配置文件（默认：$EHC_EDGE_CONFIG，否则 ./appliance.config.json）', 'appliance config file (default: $EHC_EDGE_CONFIG, else ./appliance.config.json)'));
  if (his) {
    cmd
      .option('--url <url>', tr('设备的 HIS 端口（默认：取自配置的 his.listen）', "HIS port of the appliance (default: from the config's his.listen)"))
      .option('--key <key>', keyHelp ?? tr('API 密钥（默认：$EHC_EDGE_API_KEY，否则 his.apiKeys 中第一个明文密钥）', 'API key (default: $EHC_EDGE_API_KEY, else the first plain his.apiKeys entry)'));
  }
  return cmd
    .option('-q, --quiet', tr('不在 stderr 输出进度行', 'no progress lines on stderr'))
    .option(LANG_FLAGS, langHelp())
    .addHelpText('after', exitCodesHelp());
}

/** A command that only groups subcommands (`scanners list`, `queue dead` …). */
export function defineGroup(name: string, summary: string, description?: string): Command {
  return configureParser(new Command(name), { group: true }).summary(summary).description(description ?? summary).addHelpText('after', exitCodesHelp());
}

function rootOf(cmd: Command): WithResult {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c as WithResult;
}

/**
 * The command's work: called with its options (the common ones included) and its positional arguments;
 * returns the exit code. A CliError ends it with its code and message; an EhcError with 1 and its return
 * code; anything else with 1 and the stack. With --json the error is also printed as JSON on stdout.
 */
export function act<O extends CommonOptions = CommonOptions>(cmd: Command, work: (opts: O, args: string[], cmd: Command) => Promise<number>): Command {
  return cmd.action(async (...a: unknown[]) => {
    const self = a[a.length - 1] as Command;
    const opts = self.opts() as O;
    const args = self.args.slice(0, self.registeredArguments.length).filter((x) => x !== undefined);
    const variadic = self.registeredArguments.some((r) => r.variadic);
    const positional = variadic ? (a.slice(0, -2).flat() as string[]) : args;
    let code: number;
    try {
      code = await work(opts, positional, self);
    } catch (err) {
      code = reportError(self, opts, err);
    }
    rootOf(self)[RESULT] = code;
  });
}

function reportError(cmd: Command, opts: CommonOptions, err: unknown): number {
  const name = cmd.name();
  let code: number;
  let message: string;
  if (err instanceof CliError) {
    code = err.exitCode;
    message = err.message;
  } else if (err instanceof ConfigError) {
    code = EXIT.USAGE;
    message = err.message;
  } else if (err instanceof EhcError) {
    code = EXIT.FAILURE;
    message = `${err.code} ${err.message}`;
  } else {
    code = EXIT.FAILURE;
    message = (err as Error)?.stack ?? String(err);
  }
  console.error(`ehc-edge ${name}: ${message}`);
  // --json is the same in every language: a CliError's English text
  const english = err instanceof CliError ? err.english : err instanceof Error ? err.message : String(err);
  if (opts.json) console.log(JSON.stringify({ error: english, exit_code: code }));
  return code;
}

/**
 * Parse `argv` (the arguments after the program name) against a command tree and run the chosen
 * command. Returns its exit code: 0 for --help, 2 for usage errors (commander prints them). Given the
 * tree's builder (a command module's `command`), first decides the run's language from argv (useLang).
 */
export async function runCli(build: Command | (() => Command), argv: string[]): Promise<number> {
  if (typeof build === 'function') useLang(argv);
  const root = typeof build === 'function' ? build() : build;
  const r = root as WithResult;
  r[RESULT] = undefined;
  try {
    await root.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    throw err;
  }
  return r[RESULT] ?? EXIT.OK;
}

/**
 * An error that ends a subcommand with a given exit code and a one-line message, in the run's language:
 * `new CliError(EXIT.USAGE, '中文', 'English')` (the English also goes into --json's `error`). With one
 * text, it is a lower module's message passed on as it is (English: src/… speaks English), e.g. a
 * config check's `file: key: what to fix`. test/cli-lang.test.ts checks every `new CliError(` in tools/.
 */
export class CliError extends Error {
  /** The English text (--json prints it in every language). */
  readonly english: string;
  constructor(
    readonly exitCode: number,
    zh: string,
    en?: string,
  ) {
    super(en === undefined ? zh : tr(zh, en));
    this.english = en ?? zh;
  }
}

/** The config named by --config (or `argv` holding it), else $EHC_EDGE_CONFIG, else ./appliance.config.json. */
export function loadCliConfig(from: string[] | { config?: string }): ApplianceConfig {
  const argv = Array.isArray(from) ? from : from.config ? ['--config', from.config] : [];
  try {
    return loadConfig(configPathFrom(argv, process.env));
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(EXIT.USAGE, err.message);
    throw err;
  }
}

/** Base URL of the running appliance's HIS port (a wildcard listen address is reached on loopback). */
export function hisUrl(config: ApplianceConfig): string {
  const scheme = config.his.tls ? 'https' : 'http';
  const listen = config.his.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  return `${scheme}://${listen}`;
}

/** EHC_EDGE_API_KEY, else the first plain API key of the config (an sm3: entry cannot be used to call). */
export function hisKey(config: ApplianceConfig): string | undefined {
  return process.env.EHC_EDGE_API_KEY ?? config.his.apiKeys.find((k) => !k.startsWith('sm3:'));
}

export interface HisTarget {
  url: string;
  key: string | undefined;
}

/**
 * The HIS port of the appliance: --url / --key, else the config's his.listen (a wildcard address reached
 * on loopback) and EHC_EDGE_API_KEY (or EHC_HIS_KEY) or the first plain his.apiKeys entry.
 */
export function hisTarget(config: ApplianceConfig | undefined, opts: { url?: string; key?: string }): HisTarget {
  const url = opts.url?.replace(/\/$/, '') ?? (config ? hisUrl(config) : undefined);
  if (!url) throw new CliError(EXIT.USAGE, '没有设备地址：请给出 --url 或配置文件', 'no appliance address: give --url or a config');
  const key = opts.key ?? process.env.EHC_EDGE_API_KEY ?? process.env.EHC_HIS_KEY ?? (config ? hisKey(config) : undefined);
  return { url, key };
}

/** Exit 3: the appliance's HIS port did not answer (`why`: the network's reason, e.g. ECONNREFUSED). */
export function unreachable(target: { url: string }, why: string): CliError {
  return new CliError(EXIT.UNREACHABLE, `无法连接设备 ${target.url}（${why}）`, `appliance unreachable at ${target.url} (${why})`);
}

/** Exit 2: the appliance answered 401/403 to the key (`more`: what to do, in both languages). */
export function keyRefused(status: number, more?: readonly [string, string]): CliError {
  return new CliError(EXIT.USAGE, `设备拒绝了密钥（HTTP ${status}）${more ? `：${more[0]}` : ''}`, `the appliance refused the key (HTTP ${status})${more ? `: ${more[1]}` : ''}`);
}

/** GET a JSON document from the appliance; maps network failures to exit 3 and refused keys to exit 2. */
export async function hisGet<T>(target: HisTarget, pathAndQuery: string, timeoutMs = 5000): Promise<T> {
  let res: Response;
  try {
    res = await fetch(target.url + pathAndQuery, {
      headers: { Accept: 'application/json', ...(target.key ? { Authorization: `Bearer ${target.key}` } : {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const c = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
    const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).name;
    throw unreachable(target, cause);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.status === 401 || res.status === 403) {
    throw keyRefused(res.status, target.key ? undefined : ['没有密钥；请设置 EHC_EDGE_API_KEY 或 --key', 'no key; set EHC_EDGE_API_KEY or --key']);
  }
  if (!res.ok || body === undefined) {
    const msg = (body as { ret_msg?: string } | undefined)?.ret_msg ?? text.slice(0, 200);
    throw new CliError(res.status >= 500 ? EXIT.FAILURE : EXIT.USAGE, `设备对 GET ${pathAndQuery} 的应答：HTTP ${res.status} ${msg}`, `GET ${pathAndQuery}: HTTP ${res.status} ${msg}`);
  }
  return body as T;
}

/**
 * A request to the appliance that may change something (the admin routes): the answer's status and JSON
 * body, whatever the status; network failures end the command with exit 3.
 */
export async function hisSend(target: HisTarget, method: string, pathAndQuery: string, body?: unknown, timeoutMs = 15000): Promise<{ status: number; body: Record<string, any> }> {
  let res: Response;
  try {
    res = await fetch(target.url + pathAndQuery, {
      method,
      headers: { Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(target.key ? { Authorization: `Bearer ${target.key}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const c = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
    throw unreachable(target, c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).name);
  }
  const text = await res.text();
  try {
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
  } catch {
    return { status: res.status, body: { ret_msg: text.slice(0, 200) } };
  }
}

/** Progress lines on stderr (so --json stdout stays clean); overwritten in place on a terminal. */
export function progress(enabled: boolean): { update(text: string): void; done(text?: string): void } {
  const tty = process.stderr.isTTY;
  let last = 0;
  let pending: string | null = null;
  let shown = false;
  return {
    update(text) {
      if (!enabled) return;
      const now = Date.now();
      if (tty) {
        process.stderr.write(`\r\x1b[K${text}`);
        shown = true;
      } else if (last === 0 || now - last >= 1000) {
        process.stderr.write(text + '\n');
        pending = null;
        last = now;
        return;
      } else {
        pending = text; // throttled: shown by done() if nothing newer is
      }
      last = now;
    },
    done(text) {
      if (!enabled) return;
      if (tty && shown) process.stderr.write('\r\x1b[K');
      if (!tty && pending) process.stderr.write(pending + '\n');
      if (text) process.stderr.write(text + '\n');
    },
  };
}

export function table(rows: Array<Array<string | number | null | undefined>>, header: string[]): string {
  const cell = (v: unknown) => (v === undefined || v === null || v === '' ? '-' : String(v));
  const width = (s: string) => stringWidth(s);
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(cell(r[i])))));
  const line = (vals: string[]) => vals.map((v, i) => v + ' '.repeat(Math.max(0, widths[i]! - width(v)))).join('  ').trimEnd();
  return [line(header), ...rows.map((r) => line(header.map((_, i) => cell(r[i]))))].join('\n');
}

/** True when the module at `metaUrl` is the script node was started with (also through a symlinked bin). */
export function isEntry(metaUrl: string): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}
