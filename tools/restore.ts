/**
 * ehc-edge restore FILE [--config PATH] [--check] [--json]
 * Puts a backup archive (ehc-edge backup) back where its files came from, after checking every file
 * against the archive's manifest. Refuses while the appliance runs; the state dir it replaces is moved
 * aside to <stateDir>.before-restore-<time>. --check only checks the archive.
 * Exit 0 restored (or intact), 1 damaged archive, 2 usage/config or running.
 */
import { existsSync } from 'node:fs';
import { openBackup, restoreBackup } from './lib/backup-archive.ts';
import { act, cliLang, defineCommand, EXIT, isEntry, loadCliConfig, runCli, tr, type CommonOptions } from './lib/cli.ts';
import { cstDateTime } from '../src/platform/time.ts';
import { configPathFrom } from '../src/config/load.ts';

export function command() {
  const cmd = defineCommand(
    'restore',
    tr('恢复备份包（设备停止时）', 'put a backup archive back (the appliance stopped)'),
    tr(
      '写入任何内容之前先按备份包自己的清单核对 FILE（没有多余、没有缺失、每个 SHA-256 一致），然后把配置、TLS 和密钥文件以及状态目录放回原处，保留属主和权限。设备运行时拒绝执行（先 systemctl stop ehc-edge）。被替换的状态目录移到 <stateDir>.before-restore-<时间>。之后：systemctl start ehc-edge; ehc-edge verify-audit。',
      'Checks FILE against its own manifest (nothing unlisted, nothing missing, every SHA-256 equal) before writing anything, then puts the config, TLS and key files and the state dir back where they were taken from, with their owners and modes. Refuses while the appliance runs (systemctl stop ehc-edge first). The state dir it replaces is moved aside to <stateDir>.before-restore-<time>. Then: systemctl start ehc-edge; ehc-edge verify-audit.',
    ),
    { his: false },
  )
    .argument('<file>', tr('ehc-edge backup 写出的备份包', 'the archive written by ehc-edge backup'))
    .option('--check', tr('只检查备份包，不写入任何内容', 'only check the archive; write nothing'));
  return act<CommonOptions & { check?: boolean }>(cmd, async (values, [file]) => {
    const zh = cliLang() === 'zh';
    if (values.check) {
      const { manifest, cleanup } = await openBackup(file!);
      cleanup();
      if (values.json) console.log(JSON.stringify({ ok: true, ...manifest }, null, 2));
      else if (zh) console.log(`备份完好：${manifest.files.length} 个文件，来自 ${manifest.hostname}，${cstDateTime(new Date(manifest.created))}（ehc-edge ${manifest.appVersion}）`);
      else console.log(`archive intact: ${manifest.files.length} files from ${manifest.hostname}, ${manifest.created} (ehc-edge ${manifest.appVersion})`);
      return EXIT.OK;
    }
    // the config in place (if any) tells where the running appliance would answer
    const configFile = configPathFrom(values.config ? ['--config', values.config] : [], process.env);
    const config = existsSync(configFile) ? loadCliConfig(values) : undefined;
    const { manifest, movedAside } = await restoreBackup(file!, config);
    if (values.json) console.log(JSON.stringify({ restored: true, movedAside: movedAside ?? null, ...manifest }, null, 2));
    else if (zh) {
      console.log(`已恢复 ${manifest.files.length} 个文件（配置 ${manifest.configPath}，状态目录 ${manifest.stateDir}），来自 ${manifest.hostname}，${cstDateTime(new Date(manifest.created))}`);
      if (movedAside) console.log(`被替换的状态目录已移至 ${movedAside}`);
      console.log('下一步：systemctl start ehc-edge; ehc-edge verify-audit');
    } else {
      console.log(`restored ${manifest.files.length} files (config ${manifest.configPath}, state ${manifest.stateDir}) from ${manifest.hostname}, ${manifest.created}`);
      if (movedAside) console.log(`the state dir it replaced is in ${movedAside}`);
      console.log('next: systemctl start ehc-edge; ehc-edge verify-audit');
    }
    return EXIT.OK;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
