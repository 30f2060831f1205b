/**
 * ehc-edge stats [--from yyyyMMdd] [--to yyyyMMdd] [--terms] [--out FILE] [--json] [--state] [--config PATH] [--url URL] [--key KEY]
 * Usage statistics in the national monitoring shapes (附录E): `usecard_scene_list` per day, org,
 * online/offline and treatment step, and with --terms the `read_term_list`. Fetched page by page from the
 * running appliance (GET /v1/stats/… on the HIS port, progress on stderr); with --state read from
 * `<stateDir>/stats/usage.json` directly (appliance stopped). --out FILE writes the JSON export to a file.
 * Exit 0 ok, 2 usage/config, 3 appliance unreachable.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { UsageStats, type ReadTermRow, type UsecardSceneRow } from '../src/ops/stats.ts';
import { act, CliError, cliLang, defineCommand, EXIT, hisGet, hisTarget, isEntry, loadCliConfig, progress, runCli, table, tr, type CommonOptions } from './lib/cli.ts';

const PAGE = 1000;

interface ScenePage {
  usecard_scene_list: UsecardSceneRow[];
  total_count: number;
}
interface TermPage {
  read_term_list: ReadTermRow[];
  total_count: number;
}

export interface StatsExport {
  from: string | null;
  to: string | null;
  exported_at: string;
  usecard_scene_list: UsecardSceneRow[];
  read_term_list?: ReadTermRow[];
}

type StatsOptions = CommonOptions & { from?: string; to?: string; terms?: boolean; out?: string; state?: boolean };

export function command() {
  const cmd = defineCommand(
    'stats',
    tr('用卡统计（附录E usecard_scene_list、read_term_list），JSON 导出', 'usage statistics (附录E usecard_scene_list, read_term_list), JSON export'),
    tr(
      '国家监管格式（附录E）的用卡统计：按日（北京时间）、机构、线上/线下和诊疗环节的 usecard_scene_list，加 --terms 时还有 read_term_list。从运行中的设备分页获取（HIS 端口的 GET /v1/stats/…）；加 --state 时直接读 <stateDir>/stats/usage.json（设备停止时）。',
      'Usage statistics in the national monitoring shapes (附录E): usecard_scene_list per day (China Standard Time days), org, online/offline and treatment step, and with --terms the read_term_list. Fetched page by page from the running appliance (GET /v1/stats/… on the HIS port); with --state read from <stateDir>/stats/usage.json directly (appliance stopped).',
    ),
  )
    .option('--from <yyyyMMdd>', tr('起始日（北京时间）', 'first day (CST)'))
    .option('--to <yyyyMMdd>', tr('截止日（北京时间）', 'last day (CST)'))
    .option('--terms', tr('同时导出 read_term_list（需要设备运行）', 'also the read_term_list (needs the running appliance)'))
    .option('--out <file>', tr('把 JSON 导出写入文件', 'write the JSON export to a file'))
    .option('--state', tr('直接读状态目录，不询问设备', 'read the state folder directly instead of asking the appliance'));
  return act<StatsOptions>(cmd, async (values) => {
    for (const k of ['from', 'to'] as const) {
      if (values[k] !== undefined && !/^\d{8}$/.test(values[k]!)) throw new CliError(EXIT.USAGE, `--${k} 须为 yyyyMMdd，收到 ${values[k]}`, `--${k} wants yyyyMMdd, got ${values[k]}`);
    }
    const bar = progress(!values.quiet);
    const out: StatsExport = { from: values.from ?? null, to: values.to ?? null, exported_at: new Date().toISOString(), usecard_scene_list: [] };
    if (values.state) {
      if (values.terms) throw new CliError(EXIT.USAGE, '--terms 需要运行中的设备（其扫码器登记）；请去掉 --state', '--terms needs the running appliance (its scanner registry); drop --state');
      const config = loadCliConfig(values);
      const stats = await UsageStats.open({
        file: path.join(config.stateDir, 'stats', 'usage.json'),
        site: config.site,
        defaultScene: config.verify.treatmentCode,
        readOnly: true,
      });
      out.usecard_scene_list = stats.usecardSceneList({ from: values.from, to: values.to, pageSize: Number.MAX_SAFE_INTEGER }).rows;
    } else {
      const target = hisTarget(values.url ? undefined : loadCliConfig(values), values);
      const q = new URLSearchParams();
      if (values.from) q.set('from', values.from);
      if (values.to) q.set('to', values.to);
      for (let page = 1; ; page++) {
        q.set('page_no', String(page));
        q.set('page_size', String(PAGE));
        const p = await hisGet<ScenePage>(target, `/v1/stats/usecard-scene?${q}`);
        out.usecard_scene_list.push(...p.usecard_scene_list);
        bar.update(tr(`stats：${out.usecard_scene_list.length}/${p.total_count} 行`, `stats: ${out.usecard_scene_list.length}/${p.total_count} rows`));
        if (out.usecard_scene_list.length >= p.total_count || p.usecard_scene_list.length === 0) break;
      }
      if (values.terms) {
        out.read_term_list = [];
        for (let page = 1; ; page++) {
          const p = await hisGet<TermPage>(target, `/v1/stats/read-terms?page_no=${page}&page_size=${PAGE}`);
          out.read_term_list.push(...p.read_term_list);
          if (out.read_term_list.length >= p.total_count || p.read_term_list.length === 0) break;
        }
      }
    }
    bar.done();
    const zh = cliLang() === 'zh';
    const json = JSON.stringify(out, null, 2);
    if (values.out) {
      writeFileSync(values.out, json + '\n', { flush: true });
      if (zh) console.error(`stats：已写入 ${values.out}（usecard_scene_list ${out.usecard_scene_list.length} 行${out.read_term_list ? `，read_term_list ${out.read_term_list.length} 行` : ''}）`);
      else console.error(`stats: ${out.usecard_scene_list.length} usecard_scene_list rows${out.read_term_list ? `, ${out.read_term_list.length} read_term_list rows` : ''} written to ${values.out}`);
    } else if (values.json) {
      console.log(json);
    } else {
      console.log(
        out.usecard_scene_list.length
          ? table(out.usecard_scene_list.map((r) => [r.time_region, r.org_code, r.online_or_offline, r.usecard_scene, r.usecard_scene_num]), ['time_region', 'org_code', 'online_or_offline', 'usecard_scene', 'usecard_scene_num'])
          : zh ? '该时段没有用卡记录' : 'no usage recorded in that period',
      );
      if (out.read_term_list) {
        console.log('');
        console.log(table(out.read_term_list.map((t) => [t.term_record, t.term_serial, t.term_name, t.term_useway, t.term_access_time]), ['term_record', 'term_serial', 'term_name', 'term_useway', 'term_access_time']));
      }
    }
    return EXIT.OK;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
