/**
 * `ehc-edge dialect` — the card-system dialects (dialects/*.json) by hand:
 *   detect --request FILE [--response FILE]   which dialect reproduces a sample (digest, decryption, forms)
 *   show [NAME]                               a profile's knobs and how it differs from national-v3.1 (no NAME: all)
 *   seal NAME --method M --biz JSON           a request sealed in that dialect, as it would travel
 *   open NAME (--request FILE | --response FILE)   check the digest and decrypt a sample in that dialect
 * The app secret comes from --secret, else $EHC_EDGE_APP_SECRET, else the config's upstream.appSecret;
 * the fixed key of key: fixed dialects from --app-key, else the config's upstream.appKey.
 * Text output in Chinese by default (--lang en); --json and what `seal` prints (the sealed body) are for
 * machines in every language.
 */
import { existsSync, readFileSync } from 'node:fs';
import { configPathFrom, loadConfig } from '../src/config/load.ts';
import type { ApplianceConfig } from '../src/config/schema.ts';
import { differingKnobs, NATIONAL_V31, type Dialect } from '../src/protocol/dialect.ts';
import { DialectError, loadDialect, shippedDialects } from '../src/protocol/dialect-profiles.ts';
import { detectDialect } from '../src/protocol/dialect-detect.ts';
import { openRequest, openResponse, sealRequest } from '../src/protocol/envelope.ts';
import { decodeRequestBody, encodeRequestBody } from '../src/protocol/transport.ts';
import { act, CliError, defineCommand, defineGroup, EXIT, isEntry, runCli, tr, type CommonOptions } from './lib/cli.ts';

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
  if (!secret) throw new CliError(EXIT.USAGE, '没有应用密钥（app secret）：请给出 --secret、设置 EHC_EDGE_APP_SECRET，或用含 upstream.appSecret 的 --config', 'no app secret: give --secret, set EHC_EDGE_APP_SECRET, or --config with upstream.appSecret');
  const appKey = opts.appKey ?? config?.upstream.appKey;
  return { secret, ...(appKey ? { appKey } : {}) };
}

function readSample(file: string, what: 'request' | 'response'): { fields: Record<string, unknown>; form: boolean } {
  const whatZh = what === 'request' ? '请求' : '应答';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.USAGE, `无法读取${whatZh}文件 ${file}：${(err as Error).message}`, `cannot read the ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    const { fields, form } = decodeRequestBody(text);
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new Error('not an object');
    return { fields: fields as Record<string, unknown>, form };
  } catch {
    throw new CliError(EXIT.USAGE, `${whatZh}文件 ${file} 既不是 JSON 对象，也不是 form-urlencoded 字段`, `the ${what} ${file} is neither a JSON object nor form-urlencoded fields`);
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
  if (!opts.request) throw new CliError(EXIT.USAGE, '请给出 --request 文件（封装好的请求：JSON 或 form 文本）', 'give --request FILE (a sealed request: JSON or form text)');
  const { secret, appKey } = keys(opts);
  const req = readSample(opts.request, 'request');
  const response = opts.response ? readSample(opts.response, 'response').fields : undefined;
  const report = detectDialect({ request: req.fields, form: req.form, secret, appKey, response });
  const lines: string[] = [];
  if (report.matches.length) {
    lines.push(`${tr('方言：', 'dialect: ')}${report.matches[0]}`);
    if (report.matches.length > 1) lines.push(`${tr('同样能复现：', 'also reproduced by: ')}${report.matches.slice(1).join(', ')}${response ? '' : tr('（它们的应答不同：给出 --response 以区分）', ' (they differ in their answers: give --response to tell them apart)')}`);
    const v = report.verdicts.find((x) => x.name === report.matches[0])!;
    lines.push(`${tr('复现：', 'reproduces: ')}${v.passed.join(', ')}`);
  } else {
    lines.push(tr('没有方言能复现这个样本', 'no dialect reproduces this'));
    const n = report.nearest;
    if (n) {
      lines.push(tr(`最接近：${n.name}（复现 ${n.passed.join(', ') || '无'}）`, `nearest miss: ${n.name} (reproduces ${n.passed.join(', ') || 'nothing'})`));
      for (const f of n.failed) lines.push(`  ${f.check}: ${f.why}`);
    }
    if (report.inline) lines.push(`${tr('以下参数可复现摘要并解密：', 'these knobs reproduce the digest and decrypt it: ')}"upstream.dialect": ${JSON.stringify(report.inline)}`);
  }
  print(!!opts.json, report, lines);
  return report.matches.length ? EXIT.OK : EXIT.FAILURE;
}

function show(name: string | undefined, opts: CommonOptions): number {
  const all = shippedDialects();
  const names = name ? [name] : [...all.keys()];
  const docs = names.map((n) => {
    const d = all.get(n);
    if (!d) throw new CliError(EXIT.USAGE, `没有方言 "${n}"；随附的有：${[...all.keys()].join(', ')}`, `no dialect "${n}"; shipped: ${[...all.keys()].join(', ')}`);
    return { dialect: d, differs: differingKnobs(d).filter((k) => k !== 'description' && k !== 'descriptionZh') };
  });
  const lines: string[] = [];
  for (const { dialect: d, differs } of docs) {
    if (!name) {
      lines.push(`${d.name.padEnd(18)} ${differs.length ? differs.map((k) => `${k}=${JSON.stringify(d[k])}`).join(' ') : tr('（国家标准的读法）', '(the national reading)')}`);
      continue;
    }
    lines.push(`${d.name}${tr('：', ': ')}${tr(d.descriptionZh ?? d.description ?? '', d.description ?? '')}`);
    for (const k of Object.keys(NATIONAL_V31) as (keyof Dialect)[]) {
      if (k === 'name') continue;
      lines.push(`  ${k.padEnd(13)} ${JSON.stringify(d[k])}${(differs as string[]).includes(k) ? tr(`   （国标：${JSON.stringify(NATIONAL_V31[k])}）`, `   (national: ${JSON.stringify(NATIONAL_V31[k])})`) : ''}`);
    }
  }
  print(!!opts.json, name ? docs[0] : docs, lines);
  return EXIT.OK;
}

async function seal(name: string, opts: KeyOptions & { method: string; biz?: string; appId: string; termId: string; timestamp?: string; version: string }): Promise<number> {
  const { secret, appKey } = keys(opts);
  const d = dialectOrUsage(name, appKey);
  if (!opts.biz) throw new CliError(EXIT.USAGE, '请给出 --biz JSON（或 @文件），字段名用国标的', 'give --biz JSON (or @file) with national field names');
  const text = opts.biz.startsWith('@') ? readFileSync(opts.biz.slice(1), 'utf8') : opts.biz;
  let biz: Record<string, unknown>;
  try {
    biz = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CliError(EXIT.USAGE, '--biz 不是 JSON', '--biz is not JSON');
  }
  const env = sealRequest({ method: opts.method, appId: opts.appId, termId: opts.termId, version: opts.version, ...(opts.timestamp ? { timestamp: opts.timestamp } : {}), biz, secret, dialect: d });
  const body = encodeRequestBody(env, d);
  console.log(opts.json || d.body === 'json' ? JSON.stringify(env, null, opts.json ? 2 : 0) : body.payload);
  return EXIT.OK;
}

async function open(name: string, opts: KeyOptions & { request?: string; response?: string }): Promise<number> {
  const { secret, appKey } = keys(opts);
  const d = dialectOrUsage(name, appKey);
  if (!!opts.request === !!opts.response) throw new CliError(EXIT.USAGE, '请给出 --request 文件或 --response 文件之一', 'give one of --request FILE or --response FILE');
  if (opts.request) {
    const { fields } = readSample(opts.request, 'request');
    const r = openRequest(fields, () => ({ secret, dialect: d }));
    print(!!opts.json, { digest: 'ok', biz: r.biz, wire_biz: r.wireBiz }, [tr('摘要：正确', 'digest: ok'), `${tr('业务字段：', 'biz: ')}${r.bizJson}`]);
  } else {
    const { fields } = readSample(opts.response!, 'response');
    const r = openResponse(fields, { secret, dialect: d });
    print(!!opts.json, { digest: d.signedAnswers ? 'ok' : 'unsigned dialect', code: r.retCode, message: r.retMsg, biz: r.biz }, [
      d.signedAnswers ? tr('摘要：正确', 'digest: ok') : tr('摘要：此方言的应答不签名', 'digest: not signed in this dialect'),
      `${tr('应答：', 'answer: ')}${r.retCode} ${r.retMsg}`,
      `${tr('业务字段：', 'biz: ')}${JSON.stringify(r.biz)}`,
    ]);
  }
  return EXIT.OK;
}

const keyOptions = (c: ReturnType<typeof defineCommand>) =>
  c
    .option('--secret <secret>', tr('应用密钥 app secret（默认：$EHC_EDGE_APP_SECRET，否则配置的 upstream.appSecret）', "app secret (default: $EHC_EDGE_APP_SECRET, else the config's upstream.appSecret)"))
    .option('--app-key <hex32>', tr('key: fixed 方言的固定 SM4 密钥（默认：配置的 upstream.appKey）', "fixed SM4 key of key: fixed dialects (default: the config's upstream.appKey)"));

export function command() {
  const det = keyOptions(
    defineCommand(
      'detect',
      tr('哪种方言能复现一个已封装的样本（摘要、解密、格式）', 'which dialect reproduces a sealed sample (digest, decryption, forms)'),
      tr(
        '用每种随附的方言尝试一个请求样本（JSON 或表单文本，如取自发卡系统的文档或日志），指出能复现其摘要并解密其 biz_content 的方言；加 --response 时也核对应答的形式。否则说明没有方言能复现，指出最接近的一个，并在字节级参数中搜索能复现的内联方言。没有方言能复现时退出码为 1。',
        "Tries every shipped dialect on a sample request (JSON or form text, e.g. from the card system's documentation or a log) and names the one that reproduces its digest and decrypts its biz_content; with --response also the answer's shape. Otherwise says \"no dialect reproduces this\", names the nearest miss and searches the byte-level knobs for an inline dialect that does. Exit 1 when none reproduces it.",
      ),
      { his: false },
    ),
  )
    .option('--request <file>', tr('已封装的请求', 'the sealed request'))
    .option('--response <file>', tr('它的应答（区分只在应答上不同的方言）', 'its answer (tells apart dialects that differ only in answers)'));
  act(det, (o) => detect(o as KeyOptions & { request?: string; response?: string }));
  const sh = defineCommand('show', tr('一种方言的参数及其与 national-v3.1 的差异（不给名称：全部）', "a dialect's knobs and what differs from national-v3.1 (no name: all)"), undefined, { his: false }).argument('[name]', tr('方言名称', 'dialect name'));
  act(sh, async (o, args) => show(args[0], o));
  const se = keyOptions(defineCommand('seal', tr('按某种方言封装一个请求，与实际发送的一致', 'seal a request in a dialect, as it would travel'), undefined, { his: false }))
    .argument('<name>', tr('方言名称', 'dialect name'))
    .option('--method <method>', tr('接口方法 method', 'the method field'), 'ehc.ehealthcode.verify')
    .option('--biz <json>', tr('使用国标字段名的业务字段（JSON 文本，或 @文件）', 'business fields with national names (JSON text, or @file)'))
    .option('--app-id <id>', tr('app_id 字段', 'the app_id field'), 'demo-appliance-01')
    .option('--term-id <id>', tr('term_id 字段（终端号）', 'the term_id field'), '3502A0001STMA0001')
    .option('--version <v>', tr('version 字段（有自己版本格式的方言发送它自己的）', 'version (a dialect with its own version form sends that)'), '1.0.0')
    .option('--timestamp <t>', tr('发送的 timestamp（默认：现在，按方言的格式）', "timestamp as sent (default: now in the dialect's form)"));
  act(se, (o, args) => seal(args[0]!, o as never));
  const op = keyOptions(defineCommand('open', tr('按某种方言核对样本的摘要并解密', 'check the digest and decrypt a sample in a dialect'), undefined, { his: false }))
    .argument('<name>', tr('方言名称', 'dialect name'))
    .option('--request <file>', tr('已封装的请求', 'a sealed request'))
    .option('--response <file>', tr('已封装的应答', 'a sealed answer'));
  act(op, (o, args) => open(args[0]!, o as never));
  return defineGroup(
    'dialect',
    tr('发卡系统协议方言：detect、show、seal、open', 'card-system dialects: detect, show, seal, open'),
    tr(
      'dialects/*.json 中随附的发卡系统协议方言：根据样本判断新的发卡系统使用哪一种，查看某一种，手工封装和打开报文。',
      'The dialects of the card-system protocol shipped in dialects/*.json: find which one a new card system speaks from a sample, look at one, seal and open messages by hand.',
    ),
  )
    .addCommand(det)
    .addCommand(sh)
    .addCommand(se)
    .addCommand(op);
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
