/**
 * ehc-edge backup FILE [--config PATH] [--json]
 * Writes a backup archive of the appliance (tools/lib/backup-archive.ts): its config, the TLS and key
 * files the config points at, and the whole state dir (outbox, audit chain, soft-card keys,
 * statistics). Refuses while the appliance runs. Exit 0 written, 2 usage/config or running.
 */
import { readFileSync } from 'node:fs';
import { createBackup } from './lib/backup-archive.ts';
import { act, cliLang, defineCommand, EXIT, isEntry, loadCliConfig, runCli, tr, type CommonOptions } from './lib/cli.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function command() {
  const cmd = defineCommand(
    'backup',
    tr('写备份包：配置、密钥、状态、待上传队列、审计链', 'write a backup archive: config, keys, state, outbox, audit chain'),
    tr(
      '写入 FILE：带 MANIFEST.json（每个文件的 SHA-256）的 gzip 压缩 tar 包，内含配置文件、配置所指的 TLS 和密码卡密钥文件，以及整个状态目录（待上传队列、审计链、软卡密钥、统计）。设备必须停止（systemctl stop ehc-edge）：正在写的队列或审计文件可能在记录中途被复制。备份包含密钥：请像保管密钥一样保管它（以 0600 权限写入）。',
      'Writes FILE, a gzip\'d tar with a MANIFEST.json (SHA-256 of every file): the config file, the TLS and card key files it points at, and the whole state dir (outbox, audit chain, soft-card keys, statistics). The appliance must be stopped (systemctl stop ehc-edge): a live outbox or audit file can be copied mid-record. The archive holds keys: keep it like the keys (it is written 0600).',
    ),
    { his: false },
  ).argument('<file>', tr('要写入的备份包（如 ehc-edge-backup.tar.gz）', 'the archive to write (e.g. ehc-edge-backup.tar.gz)'));
  return act<CommonOptions>(cmd, async (values, [file]) => {
    const config = loadCliConfig(values);
    const m = await createBackup(config, file!, VERSION);
    const bytes = m.files.reduce((n, f) => n + f.size, 0);
    if (values.json) console.log(JSON.stringify({ file, ...m }, null, 2));
    else if (cliLang() === 'zh') console.log(`备份已写入：${file}（${m.files.length} 个文件，压缩前 ${bytes} 字节；配置 ${m.configPath}，状态目录 ${m.stateDir}）`);
    else console.log(`backup written: ${file} (${m.files.length} files, ${bytes} bytes before compression; config ${m.configPath}, state ${m.stateDir})`);
    return EXIT.OK;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
