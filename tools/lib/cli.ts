/**
 * What every `ehc-edge` subcommand shares: the argument parser (commander), the common options, exit
 * codes, config loading, talking to the running appliance over the HIS port, progress lines on stderr,
 * and tables whose columns are measured in terminal cells (CJK characters are two wide).
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
import { Command, CommanderError } from 'commander';
import stringWidth from 'string-width';
import { ConfigError, configPathFrom, loadConfig } from '../../src/config/load.ts';
import type { ApplianceConfig } from '../../src/config/schema.ts';
import { EhcError } from '../../src/errors.ts';

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, UNREACHABLE: 3 } as const;

/** The exit codes every command uses, for --help and the man page. */
export const EXIT_CODES: ReadonlyArray<readonly [number, string]> = [
  [EXIT.OK, 'ok'],
  [EXIT.FAILURE, 'a failure was found (a component needs attention, a broken audit chain, a rejected code)'],
  [EXIT.USAGE, 'usage or configuration error (unknown option, bad value, unreadable config, refused key)'],
  [EXIT.UNREACHABLE, 'the appliance is not reachable on its HIS port'],
];

/** Options every subcommand takes. */
export interface CommonOptions {
  json?: boolean;
  config?: string;
  url?: string;
  key?: string;
  quiet?: boolean;
}

const RESULT = Symbol('ehc-edge exit code');
type WithResult = Command & { [RESULT]?: number };

/** Parser settings shared by every command of the tree: errors as exceptions, CJK-aware help columns. */
export function configureParser(cmd: Command): Command {
  return cmd
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) })
    .configureHelp({ displayWidth: (s) => stringWidth(s), sortSubcommands: false })
    .showSuggestionAfterError(true);
}

/** Help text listing the exit codes (appended to every command's --help). */
export function exitCodesHelp(): string {
  return '\nExit codes:\n' + EXIT_CODES.map(([c, m]) => `  ${c}  ${m}`).join('\n') + '\n';
}

/**
 * A leaf command with the common options (--json, --config, --url, --key, --quiet, --help). Add its own
 * options and arguments, then its work with `act`.
 */
export function defineCommand(name: string, summary: string, description?: string, { his = true, keyHelp }: { his?: boolean; keyHelp?: string } = {}): Command {
  const cmd = configureParser(new Command(name))
    .summary(summary)
    .description(description ?? summary)
    .option('--json', 'print JSON on stdout (errors too: {"error": …, "exit_code": …})')
    .option('--config <path>', 'appliance config file (default: $EHC_EDGE_CONFIG, else ./appliance.config.json)');
  if (his) {
    cmd
      .option('--url <url>', "HIS port of the appliance (default: from the config's his.listen)")
      .option('--key <key>', keyHelp ?? 'API key (default: $EHC_EDGE_API_KEY, else the first plain his.apiKeys entry)');
  }
  return cmd.option('-q, --quiet', 'no progress lines on stderr').addHelpText('after', exitCodesHelp());
}

/** A command that only groups subcommands (`scanners list`, `queue dead` …). */
export function defineGroup(name: string, summary: string, description?: string): Command {
  return configureParser(new Command(name)).summary(summary).description(description ?? summary).addHelpText('after', exitCodesHelp());
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
  if (opts.json) console.log(JSON.stringify({ error: err instanceof Error ? err.message : String(err), exit_code: code }));
  return code;
}

/**
 * Parse `argv` (the arguments after the program name) against a command tree and run the chosen
 * command. Returns its exit code: 0 for --help, 2 for usage errors (commander prints them).
 */
export async function runCli(root: Command, argv: string[]): Promise<number> {
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

/** An error that ends a subcommand with a given exit code and a one-line message. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
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
  if (!url) throw new CliError(EXIT.USAGE, 'no appliance address: give --url or a config');
  const key = opts.key ?? process.env.EHC_EDGE_API_KEY ?? process.env.EHC_HIS_KEY ?? (config ? hisKey(config) : undefined);
  return { url, key };
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
    throw new CliError(EXIT.UNREACHABLE, `appliance unreachable at ${target.url} (${cause})`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.status === 401 || res.status === 403) {
    throw new CliError(EXIT.USAGE, `the appliance refused the key (HTTP ${res.status})${target.key ? '' : ': no key; set EHC_EDGE_API_KEY or --key'}`);
  }
  if (!res.ok || body === undefined) {
    const msg = (body as { ret_msg?: string } | undefined)?.ret_msg ?? text.slice(0, 200);
    throw new CliError(res.status >= 500 ? EXIT.FAILURE : EXIT.USAGE, `GET ${pathAndQuery}: HTTP ${res.status} ${msg}`);
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
    throw new CliError(EXIT.UNREACHABLE, `appliance unreachable at ${target.url} (${c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).name})`);
  }
  const text = await res.text();
  try {
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
  } catch {
    return { status: res.status, body: { ret_msg: text.slice(0, 200) } };
  }
}

export type Lang = 'zh' | 'en';

/** zh-CN unless --lang en, EHC_EDGE_LANG=en or a LANG/LC_ALL that is not Chinese and says English. */
export function langFrom(opt: string | undefined, env: NodeJS.ProcessEnv = process.env): Lang {
  const pick = (v: string | undefined) => (v === undefined ? undefined : /^en/i.test(v) ? 'en' : /^zh/i.test(v) ? 'zh' : undefined);
  return pick(opt) ?? pick(env.EHC_EDGE_LANG) ?? (/^en/i.test(env.LC_ALL ?? env.LANG ?? '') ? 'en' : 'zh');
}

/** The --lang option as every command with text output takes it. */
export const LANG_FLAGS = '--lang <zh|en>';
export const LANG_HELP = 'language of the text output (default: zh, or EHC_EDGE_LANG / an English LANG)';

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
