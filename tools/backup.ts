/**
 * ehc-edge backup FILE [--config PATH] [--json]
 * Writes a backup archive of the appliance (tools/lib/backup-archive.ts): its config, the TLS and key
 * files the config points at, and the whole state dir (outbox, audit chain, soft-card keys,
 * statistics). Refuses while the appliance runs. Exit 0 written, 2 usage/config or running.
 */
import { readFileSync } from 'node:fs';
import { createBackup } from './lib/backup-archive.ts';
import { act, defineCommand, EXIT, isEntry, LANG_FLAGS, LANG_HELP, langFrom, loadCliConfig, runCli, type CommonOptions } from './lib/cli.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function command() {
  const cmd = defineCommand(
    'backup',
    'write a backup archive: config, keys, state, outbox, audit chain',
    'Writes FILE, a gzip\'d tar with a MANIFEST.json (SHA-256 of every file): the config file, the TLS and card key files it points at, and the whole state dir (outbox, audit chain, soft-card keys, statistics). The appliance must be stopped (systemctl stop ehc-edge): a live outbox or audit file can be copied mid-record. The archive holds keys: keep it like the keys (it is written 0600).',
    { his: false },
  )
    .argument('<file>', 'the archive to write (e.g. ehc-edge-backup.tar.gz)')
    .option(LANG_FLAGS, LANG_HELP);
  return act<CommonOptions & { lang?: string }>(cmd, async (values, [file]) => {
    const config = loadCliConfig(values);
    const m = await createBackup(config, file!, VERSION);
    const bytes = m.files.reduce((n, f) => n + f.size, 0);
    if (values.json) console.log(JSON.stringify({ file, ...m }, null, 2));
    else if (langFrom(values.lang) === 'zh') console.log(`备份已写入：${file}（${m.files.length} 个文件，压缩前 ${bytes} 字节；配置 ${m.configPath}，状态目录 ${m.stateDir}）`);
    else console.log(`backup written: ${file} (${m.files.length} files, ${bytes} bytes before compression; config ${m.configPath}, state ${m.stateDir})`);
    return EXIT.OK;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command(), argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
