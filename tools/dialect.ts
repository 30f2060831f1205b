/**
 * `ehc-edge dialect` — the card-system dialects (dialects/*.json) by hand:
 *   detect --request FILE [--response FILE]   which dialect reproduces a sample (digest, decryption, forms)
 *   show [NAME]                               a profile's knobs and how it differs from national-v3.1 (no NAME: all)
 *   seal NAME --method M --biz JSON           a request sealed in that dialect, as it would travel
 *   open NAME (--request FILE | --response FILE)   check the digest and decrypt a sample in that dialect
 * The app secret comes from --secret, else $EHC_EDGE_APP_SECRET, else the config's upstream.appSecret;
 * the fixed key of key: fixed dialects from --app-key, else the config's upstream.appKey.
 */
import { existsSync, readFileSync } from 'node:fs';
import { configPathFrom, loadConfig } from '../src/config/load.ts';
import type { ApplianceConfig } from '../src/config/schema.ts';
import { differingKnobs, NATIONAL_V31, type Dialect } from '../src/protocol/dialect.ts';
import { DialectError, loadDialect, shippedDialects } from '../src/protocol/dialect-profiles.ts';
import { detectDialect } from '../src/protocol/dialect-detect.ts';
import { openRequest, openResponse, sealRequest } from '../src/protocol/envelope.ts';
import { decodeRequestBody, encodeRequestBody } from '../src/protocol/transport.ts';
import { act, CliError, defineCommand, defineGroup, EXIT, isEntry, runCli, type CommonOptions } from './lib/cli.ts';

interface KeyOptions extends CommonOptions {
  secret?: string;
  appKey?: string;
}

/** The config, when one is named or the default file exists (dialect commands work without one). */
function maybeConfig(opts: CommonOptions): ApplianceConfig | undefined {
  const file = configPathFrom(opts.config ? ['--config', opts.config] : [], process.env);
  if (!opts.config && !existsSync(file)) return undefined;
  return loadConfig(file);
}

function keys(opts: KeyOptions): { secret: string; appKey?: string } {
  const config = opts.secret && opts.appKey ? undefined : maybeConfig(opts);
  const secret = opts.secret ?? process.env.EHC_EDGE_APP_SECRET ?? config?.upstream.appSecret;
  if (!secret) throw new CliError(EXIT.USAGE, 'no app secret: give --secret, set EHC_EDGE_APP_SECRET, or --config with upstream.appSecret');
  const appKey = opts.appKey ?? config?.upstream.appKey;
  return { secret, ...(appKey ? { appKey } : {}) };
}

function readSample(file: string, what: string): { fields: Record<string, unknown>; form: boolean } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.USAGE, `cannot read the ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    const { fields, form } = decodeRequestBody(text);
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new Error('not an object');
    return { fields: fields as Record<string, unknown>, form };
  } catch {
    throw new CliError(EXIT.USAGE, `the ${what} ${file} is neither a JSON object nor form-urlencoded fields`);
  }
}

function dialectOrUsage(name: string, appKey?: string): Dialect {
  try {
    return loadDialect(name, { appKey, where: 'dialect' });
  } catch (err) {
    if (err instanceof DialectError) throw new CliError(EXIT.USAGE, err.message);
    throw err;
  }
}

const print = (json: boolean, doc: unknown, lines: string[]) => console.log(json ? JSON.stringify(doc, null, 2) : lines.join('\n'));

async function detect(opts: KeyOptions & { request?: string; response?: string }): Promise<number> {
  if (!opts.request) throw new CliError(EXIT.USAGE, 'give --request FILE (a sealed request: JSON or form text)');
  const { secret, appKey } = keys(opts);
  const req = readSample(opts.request, 'request');
  const response = opts.response ? readSample(opts.response, 'response').fields : undefined;
  const report = detectDialect({ request: req.fields, form: req.form, secret, appKey, response });
  const lines: string[] = [];
  if (report.matches.length) {
    lines.push(`dialect: ${report.matches[0]}`);
    if (report.matches.length > 1) lines.push(`also reproduced by: ${report.matches.slice(1).join(', ')}${response ? '' : ' (they differ in their answers: give --response to tell them apart)'}`);
    const v = report.verdicts.find((x) => x.name === report.matches[0])!;
    lines.push(`reproduces: ${v.passed.join(', ')}`);
  } else {
    lines.push('no dialect reproduces this');
    const n = report.nearest;
    if (n) {
      lines.push(`nearest miss: ${n.name} (reproduces ${n.passed.join(', ') || 'nothing'})`);
      for (const f of n.failed) lines.push(`  ${f.check}: ${f.why}`);
    }
    if (report.inline) lines.push(`these knobs reproduce the digest and decrypt it: "upstream.dialect": ${JSON.stringify(report.inline)}`);
  }
  print(!!opts.json, report, lines);
  return report.matches.length ? EXIT.OK : EXIT.FAILURE;
}

function show(name: string | undefined, opts: CommonOptions): number {
  const all = shippedDialects();
  const names = name ? [name] : [...all.keys()];
  const docs = names.map((n) => {
    const d = all.get(n);
    if (!d) throw new CliError(EXIT.USAGE, `no dialect "${n}"; shipped: ${[...all.keys()].join(', ')}`);
    return { dialect: d, differs: differingKnobs(d).filter((k) => k !== 'description') };
  });
  const lines: string[] = [];
  for (const { dialect: d, differs } of docs) {
    if (!name) {
      lines.push(`${d.name.padEnd(18)} ${differs.length ? differs.map((k) => `${k}=${JSON.stringify(d[k])}`).join(' ') : '(the national reading)'}`);
      continue;
    }
    lines.push(`${d.name}: ${d.description ?? ''}`);
    for (const k of Object.keys(NATIONAL_V31) as (keyof Dialect)[]) {
      if (k === 'name') continue;
      lines.push(`  ${k.padEnd(13)} ${JSON.stringify(d[k])}${(differs as string[]).includes(k) ? `   (national: ${JSON.stringify(NATIONAL_V31[k])})` : ''}`);
    }
  }
  print(!!opts.json, name ? docs[0] : docs, lines);
  return EXIT.OK;
}

async function seal(name: string, opts: KeyOptions & { method: string; biz?: string; appId: string; termId: string; timestamp?: string; version: string }): Promise<number> {
  const { secret, appKey } = keys(opts);
  const d = dialectOrUsage(name, appKey);
  if (!opts.biz) throw new CliError(EXIT.USAGE, 'give --biz JSON (or @file) with national field names');
  const text = opts.biz.startsWith('@') ? readFileSync(opts.biz.slice(1), 'utf8') : opts.biz;
  let biz: Record<string, unknown>;
  try {
    biz = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CliError(EXIT.USAGE, '--biz is not JSON');
  }
  const env = sealRequest({ method: opts.method, appId: opts.appId, termId: opts.termId, version: opts.version, ...(opts.timestamp ? { timestamp: opts.timestamp } : {}), biz, secret, dialect: d });
  const body = encodeRequestBody(env, d);
  console.log(opts.json || d.body === 'json' ? JSON.stringify(env, null, opts.json ? 2 : 0) : body.payload);
  return EXIT.OK;
}

async function open(name: string, opts: KeyOptions & { request?: string; response?: string }): Promise<number> {
  const { secret, appKey } = keys(opts);
  const d = dialectOrUsage(name, appKey);
  if (!!opts.request === !!opts.response) throw new CliError(EXIT.USAGE, 'give one of --request FILE or --response FILE');
  if (opts.request) {
    const { fields } = readSample(opts.request, 'request');
    const r = openRequest(fields, () => ({ secret, dialect: d }));
    print(!!opts.json, { digest: 'ok', biz: r.biz, wire_biz: r.wireBiz }, ['digest: ok', `biz: ${r.bizJson}`]);
  } else {
    const { fields } = readSample(opts.response!, 'response');
    const r = openResponse(fields, { secret, dialect: d });
    print(!!opts.json, { digest: d.signedAnswers ? 'ok' : 'unsigned dialect', code: r.retCode, message: r.retMsg, biz: r.biz }, [`digest: ${d.signedAnswers ? 'ok' : 'not signed in this dialect'}`, `answer: ${r.retCode} ${r.retMsg}`, `biz: ${JSON.stringify(r.biz)}`]);
  }
  return EXIT.OK;
}

const keyOptions = (c: ReturnType<typeof defineCommand>) =>
  c.option('--secret <secret>', 'app secret (default: $EHC_EDGE_APP_SECRET, else the config\'s upstream.appSecret)').option('--app-key <hex32>', "fixed SM4 key of key: fixed dialects (default: the config's upstream.appKey)");

export function command() {
  const det = keyOptions(defineCommand('detect', 'which dialect reproduces a sealed sample (digest, decryption, forms)', "Tries every shipped dialect on a sample request (JSON or form text, e.g. from the card system's documentation or a log) and names the one that reproduces its digest and decrypts its biz_content; with --response also the answer's shape. Otherwise says \"no dialect reproduces this\", names the nearest miss and searches the byte-level knobs for an inline dialect that does. Exit 1 when none reproduces it.", { his: false }))
    .option('--request <file>', 'the sealed request')
    .option('--response <file>', 'its answer (tells apart dialects that differ only in answers)');
  act(det, (o) => detect(o as KeyOptions & { request?: string; response?: string }));
  const sh = defineCommand('show', "a dialect's knobs and what differs from national-v3.1 (no name: all)", undefined, { his: false }).argument('[name]', 'dialect name');
  act(sh, async (o, args) => show(args[0], o));
  const se = keyOptions(defineCommand('seal', 'seal a request in a dialect, as it would travel', undefined, { his: false }))
    .argument('<name>', 'dialect name')
    .option('--method <method>', 'method', 'ehc.ehealthcode.verify')
    .option('--biz <json>', 'business fields with national names (JSON text, or @file)')
    .option('--app-id <id>', 'app_id', 'demo-appliance-01')
    .option('--term-id <id>', 'term_id', '3502A0001STMA0001')
    .option('--version <v>', 'version (a dialect with its own version form sends that)', '1.0.0')
    .option('--timestamp <t>', "timestamp as sent (default: now in the dialect's form)");
  act(se, (o, args) => seal(args[0]!, o as never));
  const op = keyOptions(defineCommand('open', 'check the digest and decrypt a sample in a dialect', undefined, { his: false }))
    .argument('<name>', 'dialect name')
    .option('--request <file>', 'a sealed request')
    .option('--response <file>', 'a sealed answer');
  act(op, (o, args) => open(args[0]!, o as never));
  return defineGroup('dialect', 'card-system dialects: detect, show, seal, open', 'The dialects of the card-system protocol shipped in dialects/*.json: find which one a new card system speaks from a sample, look at one, seal and open messages by hand.')
    .addCommand(det)
    .addCommand(sh)
    .addCommand(se)
    .addCommand(op);
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command(), argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
