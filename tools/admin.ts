/**
 * `ehc-edge admin reload | dead list|requeue|drop | scanners register|rename | keys list|rotate`: the admin
 * API of the running appliance (src/his/admin-routes.ts), with an admin key: --key, else
 * EHC_EDGE_ADMIN_KEY, else the first plain `admin.apiKeys` entry of the config. A HIS key is refused
 * (exit 2). Every action is audited by the appliance with the admin key's id.
 *
 * Exit codes as every command: 0 done · 1 the appliance refused the action (unknown scanner or key id,
 * config file refused, outbox full) · 2 usage, or the key refused · 3 appliance unreachable.
 */
import type { Command } from 'commander';
import type { ApplianceConfig } from '../src/config/schema.ts';
import { cstDateTime } from '../src/platform/time.ts';
import { act, CliError, cliLang, defineCommand, defineGroup, EXIT, hisSend, hisTarget, isEntry, loadCliConfig, runCli, table, tr, type CommonOptions, type HisTarget, type Lang } from './lib/cli.ts';

type AdminOptions = CommonOptions;

const T = {
  zh: {
    reloaded: '配置已重新加载', applied: '已生效', needsRestart: '需重启 (systemctl restart ehc-edge) 才生效', none: '无',
    requeued: (n: number) => `已重新排队 ${n} 条`, dropped: (n: number) => `已删除 ${n} 条`, notDead: '不是失败记录（未处理）',
    deadCols: ['序号', '类型', '流水号', '返回码', '原因', '尝试', '失败时间'], noDead: '没有失败记录',
    registered: (id: string, name: string) => `扫码器 ${id} 已登记为「${name}」`, renamed: (id: string, name: string, from?: string) => `扫码器 ${id} 已改名为「${name}」${from ? `（原「${from}」）` : ''}`,
    keyCols: ['密钥 ID', '来源', '创建', '有效至'], source: { config: '配置文件', rotation: '轮换' } as Record<string, string>,
    rotated: '新的 HIS 密钥（只显示这一次，请立即交给 HIS）：', newId: '新密钥 ID', oldValid: (id: string, until: string) => `旧密钥 ${id} 在 ${until} 之前仍然有效`,
    times: '时间为北京时间 (CST, UTC+8)',
  },
  en: {
    reloaded: 'config reloaded', applied: 'applied', needsRestart: 'needs a restart (systemctl restart ehc-edge)', none: 'none',
    requeued: (n: number) => `requeued ${n}`, dropped: (n: number) => `dropped ${n}`, notDead: 'not dead letters (nothing done)',
    deadCols: ['seq', 'kind', 'out_verify_no', 'code', 'reason', 'attempts', 'died'], noDead: 'no dead letters',
    registered: (id: string, name: string) => `scanner ${id} registered as "${name}"`, renamed: (id: string, name: string, from?: string) => `scanner ${id} renamed to "${name}"${from ? ` (was "${from}")` : ''}`,
    keyCols: ['key id', 'source', 'created', 'valid until'], source: { config: 'config file', rotation: 'rotation' } as Record<string, string>,
    rotated: 'new HIS key (shown this once: hand it to the HIS now):', newId: 'new key id', oldValid: (id: string, until: string) => `the old key ${id} stays valid until ${until}`,
    times: 'times in China Standard Time (CST, UTC+8)',
  },
};

/** EHC_EDGE_ADMIN_KEY, else the first plain admin.apiKeys entry (an sm3: entry cannot be used to call). */
export function adminKey(config: ApplianceConfig | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.EHC_EDGE_ADMIN_KEY ?? config?.admin.apiKeys.find((k) => !k.startsWith('sm3:'));
}

function target(opts: AdminOptions): HisTarget {
  const config = opts.url && (opts.key ?? process.env.EHC_EDGE_ADMIN_KEY) ? undefined : loadCliConfig(opts);
  const t = hisTarget(config, { url: opts.url, key: 'unused' });
  return { url: t.url, key: opts.key ?? adminKey(config) };
}

/** The answer of an admin route as an exit code (the message for a refusal). */
function outcome(status: number, body: Record<string, any>, what: string): void {
  if (status >= 200 && status < 300) return;
  const msg = `HTTP ${status} ${body.ret_code ?? ''} ${body.ret_msg ?? ''}`.trim(); // the appliance's own words (English)
  const [zh, en] = status === 401 ? ['（需要管理密钥：--key 或 EHC_EDGE_ADMIN_KEY；HIS 密钥会被拒绝）', ' (an admin key is needed: --key or EHC_EDGE_ADMIN_KEY; a HIS key is refused)'] : ['', ''];
  throw new CliError([400, 401, 403, 429].includes(status) ? EXIT.USAGE : EXIT.FAILURE, `${what} 未成功：${msg}${zh}`, `${what}: ${msg}${en}`);
}

const cst = (iso: string | undefined) => (iso ? cstDateTime(new Date(iso)) : undefined);

function leaf(name: string, summary: string, description?: string): Command {
  return defineCommand(name, summary, description, { keyHelp: tr('管理密钥（默认：$EHC_EDGE_ADMIN_KEY，否则 admin.apiKeys 中第一个明文密钥；HIS 密钥会被拒绝）', 'admin key (default: $EHC_EDGE_ADMIN_KEY, else the first plain admin.apiKeys entry; a HIS key is refused)') });
}

export function command(out: (line: string) => void = (line) => console.log(line)) {
  const say = (opts: AdminOptions, body: unknown, text: (t: (typeof T)['zh'], lang: Lang) => string) => {
    const lang = cliLang();
    out(opts.json ? JSON.stringify(body, null, 2) : text(T[lang] as (typeof T)['zh'], lang));
  };

  const reload = leaf(
    'reload',
    tr('重新读取配置文件，无需重启即可生效的部分立即生效（同 systemctl reload）', 're-read the config file and apply what applies without a restart (as systemctl reload)'),
    tr(
      'POST /v1/admin/reload：与 SIGHUP 同一路径。立即生效：his.apiKeys、log.level、scanners、scannerAutoDetect；其他改动的配置项会列为需要重启。未通过启动检查的文件整体被拒绝（退出码 1），运行中的配置保持不变。',
      'POST /v1/admin/reload: the same path as SIGHUP. Applied at once: his.apiKeys, log.level, scanners, scannerAutoDetect; other changed keys are named as needing a restart. A file that does not pass the start-up checks is refused whole (exit 1) and the running config stays.',
    ),
  );
  act<AdminOptions>(reload, async (opts) => {
    const r = await hisSend(target(opts), 'POST', '/v1/admin/reload');
    outcome(r.status, r.body, 'reload');
    say(opts, r.body, (t) => [`${t.reloaded}`, `  ${t.applied}: ${r.body.applied.join(', ') || t.none}`, `  ${t.needsRestart}: ${r.body.needs_restart.join(', ') || t.none}`].join('\n'));
    return EXIT.OK;
  });

  const deadList = leaf('list', tr('待上传队列的失败记录（不含记录内容）', "the outbox's dead letters (no payload)")).option('--after <seq>', tr('从此序号之后列出（分页）', 'list after this seq (paging)'), '0').option('--limit <n>', tr('条数 1..1000', 'how many, 1..1000'), '100');
  act<AdminOptions & { after: string; limit: string }>(deadList, async (opts) => {
    const r = await hisSend(target(opts), 'GET', `/v1/admin/dead-letters?after=${encodeURIComponent(opts.after)}&limit=${encodeURIComponent(opts.limit)}`);
    outcome(r.status, r.body, 'dead letters');
    const rows = r.body.dead_letters as Array<Record<string, any>>;
    say(opts, r.body, (t) => (rows.length ? table(rows.map((d) => [d.seq, d.kind, d.out_verify_no, d.ret_code, d.reason, d.attempts, cst(d.died_at)]), t.deadCols) + `\n(${t.times})` : t.noDead));
    return EXIT.OK;
  });

  const seqsOf = (args: string[]) => {
    const seqs = args.map(Number);
    if (seqs.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new CliError(EXIT.USAGE, `序号须为正整数：${args.join(' ')}`, `seqs are positive integers: ${args.join(' ')}`);
    return seqs;
  };
  /** every dead letter's seq, page by page (for --all) */
  const allDead = async (t: HisTarget) => {
    const seqs: number[] = [];
    for (let after = 0; ; ) {
      const r = await hisSend(t, 'GET', `/v1/admin/dead-letters?after=${after}&limit=1000`);
      outcome(r.status, r.body, 'dead letters');
      const page = r.body.dead_letters as Array<{ seq: number }>;
      if (!page.length) return seqs;
      seqs.push(...page.map((d) => d.seq));
      after = page[page.length - 1]!.seq;
    }
  };
  const moveDead = (verb: 'requeue' | 'drop') => {
    const cmd = leaf(verb, verb === 'requeue' ? tr('把失败记录移回待上传队列（同一封存记录）', 'move dead letters back to the outbox (same sealed record)') : tr('永久删除失败记录', 'delete dead letters for good'))
      .argument('[seq...]', tr('失败记录的序号（ehc-edge admin dead list）', 'dead letters by seq (ehc-edge admin dead list)'))
      .option('--all', tr('全部失败记录', 'every dead letter'));
    act<AdminOptions & { all?: boolean }>(cmd, async (opts, args) => {
      const t = target(opts);
      const seqs = opts.all ? await allDead(t) : seqsOf(args);
      if (!opts.all && seqs.length === 0) throw new CliError(EXIT.USAGE, '请给出序号或 --all', 'give seqs or --all');
      let done = 0;
      const notDead: number[] = [];
      for (let i = 0; i < seqs.length; i += 1000) {
        const r = await hisSend(t, 'POST', `/v1/admin/dead-letters/${verb}`, { seqs: seqs.slice(i, i + 1000) });
        outcome(r.status, r.body, verb);
        done += r.body[verb === 'requeue' ? 'requeued' : 'dropped'] as number;
        notDead.push(...(r.body.not_dead as number[]));
      }
      const body = { [verb === 'requeue' ? 'requeued' : 'dropped']: done, not_dead: notDead };
      say(opts, body, (tx) => `${verb === 'requeue' ? tx.requeued(done) : tx.dropped(done)}${notDead.length ? `\n${tx.notDead}: ${notDead.join(' ')}` : ''}`);
      return EXIT.OK;
    });
    return cmd;
  };
  const dead = defineGroup('dead', tr('待上传队列的失败记录：列出、重新排队、删除', "the outbox's dead letters: list, requeue, drop")).addCommand(deadList).addCommand(moveDead('requeue')).addCommand(moveDead('drop'));

  const register = leaf('register', tr('为扫码器（及其工位）命名：重启后保留，显示在状态和之后的扫码事件中', 'name a scanner (and its station): kept across restarts, in status and later scan events'))
    .argument('<scanner-id>', tr('列表中的扫码器 ID（ehc-edge scanners list）', 'the id it is listed under (ehc-edge scanners list)'))
    .argument('<name>', tr('窗口使用的名称，如「挂号 1 号窗」', 'the name desks know it by, e.g. 挂号 1 号窗'))
    .option('--station <station>', tr('工位（窗口）ID', 'station (desk) id'));
  act<AdminOptions & { station?: string }>(register, async (opts, [id, name]) => {
    const r = await hisSend(target(opts), 'POST', '/v1/admin/scanners', { scanner_id: id, name, ...(opts.station ? { station: opts.station } : {}) });
    outcome(r.status, r.body, 'register');
    say(opts, r.body, (t) => t.registered(id!, name!));
    return EXIT.OK;
  });
  const rename = leaf('rename', tr('给已列出或已登记的扫码器改名', 'rename a scanner that is listed or registered')).argument('<scanner-id>', tr('列表中的扫码器 ID', 'the id it is listed under')).argument('<name>', tr('新名称', 'the new name'));
  act<AdminOptions>(rename, async (opts, [id, name]) => {
    const r = await hisSend(target(opts), 'POST', `/v1/admin/scanners/${encodeURIComponent(id!)}/rename`, { name });
    outcome(r.status, r.body, 'rename');
    say(opts, r.body, (t) => t.renamed(id!, name!, r.body.previous_name));
    return EXIT.OK;
  });
  const scanners = defineGroup('scanners', tr('登记扫码器或改名', 'register or rename scanners')).addCommand(register).addCommand(rename);

  const keysList = leaf('list', tr('设备接受的 HIS 密钥，按 ID 列出（从不显示密钥本身）', 'the HIS keys the appliance accepts, by id (never a key)'));
  act<AdminOptions>(keysList, async (opts) => {
    const r = await hisSend(target(opts), 'GET', '/v1/admin/his-keys');
    outcome(r.status, r.body, 'keys');
    const rows = r.body.keys as Array<{ key_id: string; source: string; created_at?: string; valid_until?: string }>;
    say(opts, r.body, (t) => table(rows.map((k) => [k.key_id, t.source[k.source] ?? k.source, cst(k.created_at), cst(k.valid_until)]), t.keyCols) + `\n(${t.times})`);
    return EXIT.OK;
  });
  const rotate = leaf('rotate', tr('更换 HIS 密钥：新密钥只显示一次；旧密钥在 admin.keyGraceSeconds 内仍有效', 'replace a HIS key: prints the new key once; the old one stays valid for admin.keyGraceSeconds')).argument('<key-id>', tr('要更换的密钥 ID（ehc-edge admin keys list）', 'id of the key to replace (ehc-edge admin keys list)'));
  act<AdminOptions>(rotate, async (opts, [keyId]) => {
    const r = await hisSend(target(opts), 'POST', '/v1/admin/his-keys/rotate', { key_id: keyId });
    outcome(r.status, r.body, 'rotate');
    say(opts, r.body, (t) => [t.rotated, `  ${r.body.key}`, `${t.newId}: ${r.body.key_id}`, t.oldValid(r.body.replaced_key_id, cst(r.body.replaced_valid_until)!)].join('\n'));
    return EXIT.OK;
  });
  const keys = defineGroup('keys', tr('HIS 密钥：列出、轮换', 'HIS keys: list, rotate')).addCommand(keysList).addCommand(rotate);

  return defineGroup(
    'admin',
    tr('对运行中设备的管理操作（管理密钥）：重新加载、失败记录、扫码器、HIS 密钥', 'admin actions on the running appliance (admin key): reload, dead letters, scanners, HIS keys'),
    tr(
      '用管理密钥（admin.apiKeys；HIS 密钥或只读密钥会被拒绝）调用运行中设备的管理接口（POST/GET /v1/admin/…）。每个操作都以管理密钥的 ID 记入审计。',
      'The admin API of the running appliance (POST/GET /v1/admin/…) with an admin key (admin.apiKeys; a HIS or viewer key is refused). Every action is audited with the id of the admin key.',
    ),
  )
    .addCommand(reload)
    .addCommand(dead)
    .addCommand(scanners)
    .addCommand(keys);
}

export async function main(argv: string[], out?: (line: string) => void): Promise<number> {
  return runCli(() => command(out), argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
