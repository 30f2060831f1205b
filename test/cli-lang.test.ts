/**
 * Chinese first (#18): every command's --help, its text output and its error lines (commander's usage
 * errors, our one-line reasons) are zh-CN by default and English with --lang en / EHC_EDGE_LANG=en;
 * machine output (--json, errors' JSON too, the codes list README cuts with `cut -f1`, hex) is the same
 * in both. Runs the dispatcher in-process.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Argument, Command, CommanderError, Help, Option } from 'commander';
import ts from 'typescript';
import stringWidth from 'string-width';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { buildProgram } from '../tools/ehc-edge.ts';
import { commanderErrorZh, configureParser, useLang, wrapCells } from '../tools/lib/cli.ts';
import { tempDir } from './helpers/tmp.ts';
import { captureCli, type Env } from './helpers/cli-capture.ts';

const CJK = /[\u3400-\u9fff]/;
/** A machine that states no language (what the appliance's service sees): the default applies. */
const NO_LANG = { LANG: 'C.UTF-8', LC_ALL: undefined, EHC_EDGE_LANG: undefined };
const SECRET = 'BEE975CC71E21F3FE87DE9F7121DE31F09B93D1AC804A60BBF877C240EBB0FC6';

/** Runs the dispatcher in-process with `env` laid over process.env and collects what it printed. */
const capture = (argv: string[], env: Env = NO_LANG) => captureCli(argv, env);

function tree(cmd: Command, p: string[] = []): Array<{ path: string[]; cmd: Command }> {
  return [{ path: p, cmd }, ...cmd.commands.filter((c) => c.name() !== 'help').flatMap((c) => tree(c, [...p, c.name()]))];
}

/** Every text --help shows for a command: summary, description, each argument, option and subcommand. */
function helpTexts(cmd: Command): Array<[string, string]> {
  const h = new Help();
  return [
    ['summary', cmd.summary()],
    ['description', cmd.description()],
    ...h.visibleArguments(cmd).map((a): [string, string] => [`<${a.name()}>`, a.description]),
    ...h.visibleOptions(cmd).map((o): [string, string] => [o.flags, o.description]),
    ...h.visibleCommands(cmd).map((c): [string, string] => [`command ${c.name()}`, c.summary() || c.description()]),
  ];
}

test('every help text has its own Chinese: a new option, argument or command without one fails here', async () => {
  const zh = tree((await buildProgram(undefined, 'zh')).program);
  const en = tree((await buildProgram(undefined, 'en')).program);
  assert.equal(zh.map((c) => c.path.join(' ')), en.map((c) => c.path.join(' ')));
  assert.ok(zh.length >= 20, `${zh.length} commands`);
  for (const [i, { path: p, cmd }] of zh.entries()) {
    const name = p.join(' ') || 'ehc-edge';
    const zhTexts = helpTexts(cmd);
    const enTexts = helpTexts(en[i]!.cmd);
    assert.equal(zhTexts.map(([what]) => what), enTexts.map(([what]) => what), `${name}: the same help items in both languages`);
    for (const [j, [what, text]] of zhTexts.entries()) {
      const english = enTexts[j]![1];
      if (!text && !english) continue;
      assert.ok(CJK.test(text), `${name} ${what}: no Chinese text: ${JSON.stringify(text)}`);
      assert.is.not(text, english, `${name} ${what}: the Chinese help is the English one`);
    }
  }
});

test('--help: zh-CN by default, English with --lang en or EHC_EDGE_LANG=en, exit 0 everywhere', async () => {
  const { program } = await buildProgram(undefined, 'zh');
  for (const { path: p } of tree(program)) {
    const name = p.join(' ') || 'ehc-edge';
    const zh = await capture([...p, '--help']);
    assert.is(zh.code, 0, `${name} --help: ${zh.stderr}`);
    assert.ok(zh.stdout.startsWith(`用法: ehc-edge ${p.length ? p.join(' ') : '<command>'}`), `${name}: ${zh.stdout.slice(0, 60)}`);
    assert.match(zh.stdout, /\n选项:\n/, `${name}: commander's headings in Chinese`);
    assert.match(zh.stdout, /显示帮助/);
    assert.match(zh.stdout, /\n退出码:\n {2}0 {2}正常\n/);
    assert.not.match(zh.stdout, /Usage:|Options:|Exit codes:|display help for command/, `${name}: no English heading`);
    for (const l of zh.stdout.split('\n')) assert.ok(stringWidth(l) <= 80, `${name}: a help line wider than 80 cells: ${l}`);
    for (const env of [{ ...NO_LANG, EHC_EDGE_LANG: 'en' }, NO_LANG]) {
      const en = await capture(env.EHC_EDGE_LANG ? [...p, '--help'] : [...p, '--help', '--lang', 'en'], env);
      assert.is(en.code, 0);
      assert.ok(en.stdout.startsWith('Usage: ehc-edge'), `${name} in English: ${en.stdout.slice(0, 60)}`);
      assert.match(en.stdout, /\nOptions:\n/);
      assert.match(en.stdout, /\nExit codes:\n {2}0 {2}ok\n/);
    }
  }
  // an English LANG also means English; --lang wins over the environment
  assert.match((await capture(['status', '--help'], { ...NO_LANG, LANG: 'en_US.UTF-8' })).stdout, /^Usage:/);
  assert.match((await capture(['status', '--help', '--lang', 'zh'], { ...NO_LANG, EHC_EDGE_LANG: 'en' })).stdout, /^用法:/);
  assert.match((await capture(['--lang=en', 'card', '--help'])).stdout, /^Usage:/);
});

test('help lines wrap between Chinese characters, never before their punctuation', () => {
  const lines = wrapCells('运行中设备的状态（HIS 端口的 GET /v1/status）：版本与运行时长、密码卡、发卡方/VPN 及延迟', 20).split('\n');
  assert.ok(lines.length > 2);
  for (const l of lines) {
    assert.not.match(l, /^[，。、；：）]/, l);
    assert.ok(stringWidth(l) <= 20, l);
  }
  assert.is(lines.join('').replace(/ /g, ''), '运行中设备的状态（HIS 端口的 GET /v1/status）：版本与运行时长、密码卡、发卡方/VPN 及延迟'.replace(/ /g, ''));
  assert.is(wrapCells('plain words stay whole', 11), 'plain words\nstay whole');
});

/** A site folder with a config and a SoftCard key file; `his` is where its HIS port answers. */
async function site(his = '127.0.0.1:1') {
  const t = tempDir('ehc-cli-lang-');
  const config = {
    stateDir: './var',
    site: { orgCode: '45678901-2', orgName: '演示医院', localEhcins: ['3502A0001'], termId: '3502A0001STMA0001' },
    his: { listen: his, apiKeys: ['cli-lang-test-his-key-0001'] },
    upstream: { url: 'http://127.0.0.1:18443/ehc', appId: 'demo', appSecret: 'BEE975CC71E21F3FE87DE9F7121DE31F', termId: '3502A0001STMA0001', version: '1.0.0', timeoutMs: 3000, insecure: true },
    card: { driver: 'soft' },
    verify: { policy: 'local-first' },
  };
  const file = path.join(t.dir, 'appliance.config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const card = await SoftCard.open(path.join(t.dir, 'var', 'soft-card.keys.json'), { ...DEFAULT_KEY_INDEXES });
  await card.close();
  return { ...t, file };
}

test('codes: the list on stdout is the same in both languages (cut -f1 gives the codes); what was made is said in Chinese by default', async () => {
  const s = await site();
  try {
    const zh = await capture(['codes', '--config', s.file, '--count', '2']);
    const en = await capture(['codes', '--config', s.file, '--count', '2', '--lang', 'en']);
    for (const r of [zh, en]) {
      assert.is(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.is(lines.length, 2);
      for (const l of lines) assert.match(l, /^[0-9A-F]{64}:0:[0-9A-F]{32}:3502A0001APPA0001\t# dynamic 3502A0001 \S+ \S+$/);
    }
    assert.is(zh.stderr, '已生成 2 个本地动态码（300 秒内有效），发卡方 3502A0001；核验：ehc-edge verify <码>\n');
    assert.is(en.stderr, '2 local dynamic code(s) of issuer 3502A0001, valid for 300 s; verify one: ehc-edge verify <code>\n');
    const st = await capture(['codes', '--config', s.file, '--static', '--foreign']);
    assert.match(st.stdout, /^[0-9A-F]{64}:1::3501A0002APPA0001\t# static 3501A0002 /);
    assert.match(st.stderr, /^已生成 1 个外地静态码（不过期，需核对身份），发卡方 3501A0002；/);
    const jzh = await capture(['codes', '--config', s.file, '--json']);
    const jen = await capture(['codes', '--config', s.file, '--json', '--lang', 'en']);
    const quiet = await capture(['codes', '--config', s.file, '-q']);
    assert.equal(Object.keys(JSON.parse(jzh.stdout)[0]), ['code', 'holder', 'id_no', 'type', 'issuer']);
    assert.equal(Object.keys(JSON.parse(jen.stdout)[0]), Object.keys(JSON.parse(jzh.stdout)[0]));
    assert.is(JSON.parse(jzh.stdout)[0].type, 'dynamic', 'JSON values are not translated');
    assert.is(jzh.stderr + jen.stderr + quiet.stderr, '', '--json and -q: nothing on stderr');
  } finally {
    s.cleanup();
  }
});

/** A stand-in for the appliance's HIS port answering /v1/verify with `answer` (and its status). */
async function fakeAppliance(answer: { status: number; body: Record<string, unknown> }): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

test('verify: the answer in Chinese by default, English with --lang en; masked in both; --json the same', async () => {
  const answer: { status: number; body: Record<string, unknown> } = { status: 200, body: { ret_code: '0000', ret_msg: 'ok', decided_by: 'local', code_type: 'dynamic', id_no: '350203199001011234', user_name: '张三丰' } };
  const a = await fakeAppliance(answer);
  const args = ['verify', 'SOME:0:CODE:3502A0001APPA0001', '--url', a.url, '--key', 'k'];
  try {
    const zh = await capture(args);
    assert.is(zh.code, 0, zh.stderr);
    assert.match(zh.stdout, /^核验通过（本地核验）：0000 ok；姓名 \S+，证件号 \S+（HTTP 200）\n$/);
    const en = await capture([...args, '--lang', 'en']);
    assert.match(en.stdout, /^200 0000 ok \(local\) \S+ \S+\n$/);
    for (const r of [zh, en]) {
      assert.not.match(r.stdout, /350203199001011234|张三丰/, 'personal data masked');
      assert.match(r.stdout, /3502\*+1234/);
    }
    const jzh = await capture([...args, '--json']);
    const jen = await capture([...args, '--json', '--lang', 'en']);
    assert.is(jzh.stdout, jen.stdout);
    assert.is(JSON.parse(jzh.stdout).http_status, 200);

    answer.status = 200;
    answer.body = { ret_code: '2001', ret_msg: 'code expired', decided_by: 'local' };
    const no = await capture(args);
    assert.is(no.code, 1);
    assert.is(no.stdout, '未通过（本地核验）：2001 code expired（HTTP 200）\n');
    answer.status = 202;
    answer.body = { ret_code: '0000', ret_msg: 'queued for the home card system', decided_by: 'deferred' };
    assert.is((await capture(args)).stdout, '已受理（稍后判定）：0000 queued for the home card system（HTTP 202）\n');
    assert.is((await capture([...args, '--lang', 'en'])).stdout, '202 0000 queued for the home card system (deferred)\n');
  } finally {
    a.server.close();
  }
});

test('card: show and import speak Chinese by default, English with --lang en; --json and wrap hex unchanged', async () => {
  const s = await site();
  try {
    const zh = await capture(['card', 'show', '--config', s.file]);
    assert.is(zh.code, 0, zh.stderr);
    assert.match(zh.stdout, /^配置：.*appliance\.config\.json\n驱动：soft\n密钥索引：ehcid=\d+, /);
    assert.match(zh.stdout, /\n软卡密钥文件：.*soft-card\.keys\.json\n$/);
    const en = await capture(['card', 'show', '--config', s.file, '--lang', 'en']);
    assert.match(en.stdout, /^config: .*\ndriver: soft\nkey indexes: ehcid=\d+, .*\nsoft card key file: /);
    const jzh = await capture(['card', 'show', '--config', s.file, '--json']);
    const jen = await capture(['card', 'show', '--config', s.file, '--json', '--lang', 'en']);
    assert.is(jzh.stdout, jen.stdout);
    assert.is(JSON.parse(jzh.stdout).driver, 'soft');

    const keyfile = path.join(s.dir, 'softsdf.keys');
    const imp = ['card', 'import', '--keyfile', keyfile, '--role', 'validity', '--index', '7', '--key', '22'.repeat(16)];
    assert.is((await capture(imp)).stdout, '已载入 sym，索引 7\n');
    assert.is((await capture([...imp, '--lang', 'en'])).stdout, 'loaded sym at index 7\n');
    const wrap = ['card', 'wrap', '--kek', '11'.repeat(16), '--key', '22'.repeat(16)];
    const wzh = await capture(wrap);
    const wen = await capture([...wrap, '--lang', 'en']);
    assert.match(wzh.stdout, /^[0-9A-F]{32}\n$/);
    assert.is(wzh.stdout, wen.stdout, 'hex for machines in both languages');
  } finally {
    s.cleanup();
  }
});

test('dialect: detect, show and open speak Chinese by default, English with --lang en; --json and seal unchanged', async () => {
  const detect = ['dialect', 'detect', '--secret', SECRET, '--request', 'dialects/samples/seed-request.json', '--response', 'dialects/samples/seed-response.json'];
  const zh = await capture(detect);
  assert.is(zh.code, 0, zh.stderr);
  assert.match(zh.stdout, /^方言：national-v3\.1\n/m);
  assert.match(zh.stdout, /^复现：decrypt, digest, /m);
  const en = await capture([...detect, '--lang', 'en']);
  assert.match(en.stdout, /^dialect: national-v3\.1\n/m);
  assert.match(en.stdout, /^reproduces: decrypt, digest, /m);
  const jzh = await capture([...detect, '--json']);
  const jen = await capture([...detect, '--json', '--lang', 'en']);
  assert.is(jzh.stdout, jen.stdout);

  const all = await capture(['dialect', 'show']);
  assert.match(all.stdout, /^national-v3\.1 +（国家标准的读法）$/m);
  assert.match((await capture(['dialect', 'show', '--lang', 'en'])).stdout, /^national-v3\.1 +\(the national reading\)$/m);
  assert.match((await capture(['dialect', 'show', 'form-paths'])).stdout, /body +"form" +（国标："json"）/);
  assert.match((await capture(['dialect', 'show', 'form-paths', '--lang', 'en'])).stdout, /body +"form" +\(national: "json"\)/);
  // each dialect's own description: its descriptionZh by default, its description in English
  assert.match((await capture(['dialect', 'show', 'form-paths'])).stdout, /^form-paths：省级网关式：form-urlencoded 请求体/);
  assert.match((await capture(['dialect', 'show', 'form-paths', '--lang', 'en'])).stdout, /^form-paths: province gateway style: form-urlencoded bodies/);

  const t = tempDir('ehc-cli-lang-');
  try {
    const seal = ['dialect', 'seal', 'national-v3.1', '--secret', SECRET, '--biz', '{"ehealth_code":"AB:0:CD:3501A0002APPA0001"}', '--timestamp', '1764158400000'];
    const szh = await capture(seal);
    const sen = await capture([...seal, '--lang', 'en']);
    assert.is(szh.code, 0, szh.stderr);
    assert.is(szh.stdout, sen.stdout, 'the sealed request is the same in both languages');
    const sealed = path.join(t.dir, 'sealed.json');
    writeFileSync(sealed, szh.stdout);
    const open = ['dialect', 'open', 'national-v3.1', '--secret', SECRET, '--request', sealed];
    assert.match((await capture(open)).stdout, /^摘要：正确\n业务字段：\{"ehealth_code"/);
    assert.match((await capture([...open, '--lang', 'en'])).stdout, /^digest: ok\nbiz: \{"ehealth_code"/);
  } finally {
    t.cleanup();
  }
});

test('usage errors: Chinese by default, English with --lang en; exit 2 in both', async () => {
  const cases: Array<[string[], RegExp, RegExp]> = [
    [['status', '--bogus'], /^错误：未知选项 '--bogus'\n$/, /^error: unknown option '--bogus'\n$/],
    [['status', '--jsno'], /^错误：未知选项 '--jsno'\n（是否想用 --json？）\n$/, /^error: unknown option '--jsno'\n\(Did you mean --json\?\)\n$/],
    [['verify'], /^错误：缺少必需的参数 'code'\n$/, /^error: missing required argument 'code'\n$/],
    [['verify', 'a', 'b'], /^错误：'verify' 的参数过多：应为 1 个，实际 2 个\n$/, /^error: too many arguments for 'verify'\. Expected 1 argument but got 2\.\n$/],
    [['status', '--config'], /^错误：选项 '--config <path>' 缺少取值\n$/, /^error: option '--config <path>' argument missing\n$/],
    [['card', 'import', '--role', 'mac'], /^错误：未给出必需的选项 '--keyfile <file>'\n$/, /^error: required option '--keyfile <file>' not specified\n$/],
    [['scaners'], /^错误：未知命令 'scaners'\n（是否想用 scanners？）\n$/, /^error: unknown command 'scaners'\n\(Did you mean scanners\?\)\n$/],
    [['statu'], /^错误：未知命令 'statu'\n（是否想用其中之一：stats, status？）\n$/, /^error: unknown command 'statu'\n\(Did you mean one of stats, status\?\)\n$/],
    [['codes', '--count', 'many'], /^ehc-edge codes: --count 须为 1\.\.10000，--ttl 须为秒数\n$/, /^ehc-edge codes: --count wants 1\.\.10000 and --ttl a number of seconds\n$/],
  ];
  for (const [argv, zh, en] of cases) {
    const z = await capture(argv);
    assert.is(z.code, 2, argv.join(' '));
    assert.match(z.stderr, zh, `${argv.join(' ')}: ${z.stderr}`);
    const e = await capture([...argv, '--lang', 'en']);
    assert.is(e.code, 2, argv.join(' '));
    assert.match(e.stderr, en, `${argv.join(' ')} --lang en: ${e.stderr}`);
    assert.match((await capture(argv, { ...NO_LANG, EHC_EDGE_LANG: 'en' })).stderr, en, `${argv.join(' ')} EHC_EDGE_LANG=en`);
  }
});

test("commander's other usage errors (invalid choice, env value, conflicting options) in the run's language too", () => {
  // a throwaway command with what no shipped command uses yet: commander's own messages through our parser settings
  const stderrOf = (argv: string[], env: Record<string, string> = {}) => {
    const err: string[] = [];
    const cmd = configureParser(new Command('x'))
      .configureOutput({ writeErr: (s) => void err.push(s) })
      .addOption(new Option('--mode <m>').choices(['fast', 'safe']).env('EHC_TEST_MODE'))
      .addOption(new Option('--dry').conflicts('apply'))
      .option('--apply')
      .addArgument(new Argument('[level]').choices(['low', 'high']))
      .action(() => undefined);
    Object.assign(process.env, env);
    try {
      cmd.parse(argv, { from: 'user' });
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
    }
    return err.join('');
  };
  const cases: Array<[string[], Record<string, string>, string]> = [
    [['--mode', 'slow'], {}, "错误：选项 '--mode <m>' 的取值 'slow' 无效。可选值：fast, safe\n"],
    [[], { EHC_TEST_MODE: 'slow' }, "错误：选项 '--mode <m>' 取自环境变量 'EHC_TEST_MODE' 的值 'slow' 无效。可选值：fast, safe\n"],
    [['mid'], {}, "错误：参数 'level' 的取值 'mid' 无效。可选值：low, high\n"],
    [['--dry', '--apply'], {}, "错误：选项 '--dry' 不能与 选项 '--apply' 同时使用\n"],
  ];
  try {
    for (const [argv, env, zh] of cases) {
      useLang('zh');
      assert.is(stderrOf(argv, env), zh, argv.join(' '));
      useLang('en');
      assert.match(stderrOf(argv, env), /^error: .*(is invalid(?: for argument 'level')?\. Allowed choices are|cannot be used with)/, `${argv.join(' ')} in English`);
    }
  } finally {
    useLang([]);
  }
  // a message this commander does not write (a later one might) is left as it is
  assert.is(commanderErrorZh('error: something new\n'), 'error: something new\n');
});

test('appliance unreachable: Chinese by default, English with --lang en, exit 3; --json prints the same error in both', async () => {
  // a port nothing listens on (fetch refuses port 1 itself: "bad port")
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((r) => closed.close(r));
  const args = ['status', '--url', url, '--key', 'k'];
  const zh = await capture(args);
  assert.is(zh.code, 3);
  assert.is(zh.stderr, `ehc-edge status: 无法连接设备 ${url}（ECONNREFUSED）\n`);
  const en = await capture([...args, '--lang', 'en']);
  assert.is(en.code, 3);
  assert.is(en.stderr, `ehc-edge status: appliance unreachable at ${url} (ECONNREFUSED)\n`);
  const v = await capture(['verify', 'X:0:Y:3502A0001APPA0001', '--url', url, '--key', 'k']);
  assert.is(v.code, 3);
  assert.ok(v.stderr.startsWith(`ehc-edge verify: 无法连接设备 ${url}（`), v.stderr);
  const jzh = await capture([...args, '--json']);
  const jen = await capture([...args, '--json', '--lang', 'en']);
  assert.is(jzh.stdout, jen.stdout, '--json is the same in both languages');
  assert.equal(JSON.parse(jzh.stdout), { error: `appliance unreachable at ${url} (ECONNREFUSED)`, exit_code: 3 });
  assert.match(jzh.stderr, /无法连接设备/, 'the stderr line still in the run\'s language');
});

/** Every `new CliError(…)` in tools/ (parsed with the TypeScript compiler): where, and its arguments. */
function cliErrorCalls(): Array<{ where: string; args: ts.Expression[] }> {
  const calls: Array<{ where: string; args: ts.Expression[] }> = [];
  for (const file of ['tools', 'tools/lib'].flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.ts')).map((f) => `${d}/${f}`))) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node) => {
      if (ts.isNewExpression(node) && node.expression.getText() === 'CliError') {
        calls.push({ where: `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`, args: [...(node.arguments ?? [])] });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return calls;
}

test('every CliError of tools/ says its reason in Chinese and English, or passes a lower module\'s message on as it is', () => {
  const calls = cliErrorCalls();
  assert.ok(calls.length >= 40, `${calls.length} CliErrors found`);
  const isText = (e: ts.Expression) => ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e) || ts.isTemplateExpression(e);
  /** the literal parts of a text (what a template says around its ${…}) */
  const said = (e: ts.Expression) => (ts.isTemplateExpression(e) ? [e.head.text, ...e.templateSpans.map((s) => s.literal.text)].join(' ') : (e as ts.StringLiteral).text);
  for (const { where, args } of calls) {
    if (args.length === 2) {
      const m = args[1]!;
      assert.ok(ts.isPropertyAccessExpression(m) && m.name.text === 'message', `${where}: a single text must be a lower module's message passed on (src/… speaks English); our own reasons take both: new CliError(code, '中文', 'English'), not ${m.getText()}`);
      continue;
    }
    assert.is(args.length, 3, `${where}: new CliError(code, '中文', 'English')`);
    const [zh, en] = [args[1]!, args[2]!];
    assert.ok(isText(zh) && isText(en), `${where}: both texts written out`);
    assert.ok(CJK.test(said(zh)), `${where}: the Chinese text first: ${zh.getText()}`);
    assert.not.ok(CJK.test(said(en)), `${where}: the English text second: ${en.getText()}`);
    assert.is.not(said(en), said(zh), `${where}: two texts`);
  }
});

test.run();
