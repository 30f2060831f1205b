/**
 * `ehc-edge verify <code>`: verify one code through the running appliance's HIS port and print the
 * answer with personal data masked. Exit 0 for 0000, 1 for a rejection, 3 when the appliance is unreachable.
 */
import { parseArgs } from 'node:util';
import { maskDeep } from '../src/platform/mask.ts';
import { hisKey, hisUrl, isEntry, loadCliConfig, runCommand } from './lib/cli.ts';

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false }, defer: { type: 'boolean', default: false }, config: { type: 'string' } }, allowPositionals: true });
  const code = positionals[0];
  if (!code) {
    process.stderr.write('usage: ehc-edge verify <code> [--defer] [--json]\n');
    return 2;
  }
  const config = loadCliConfig(argv);
  let res: Response;
  try {
    res = await fetch(`${hisUrl(config)}/v1/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${hisKey(config) ?? ''}` },
      body: JSON.stringify({ ehealth_code: code, ...(values.defer ? { defer: true } : {}) }),
    });
  } catch (err) {
    process.stderr.write(`appliance unreachable at ${hisUrl(config)}: ${(err as Error).message}\n`);
    return 3;
  }
  const body = maskDeep(await res.json()) as Record<string, unknown>;
  if (values.json) process.stdout.write(JSON.stringify({ http_status: res.status, ...body }, null, 2) + '\n');
  else process.stdout.write(`${res.status} ${body.ret_code} ${body.ret_msg}${body.decided_by ? ` (${body.decided_by})` : ''}${body.id_no ? ` ${body.id_no}` : ''}${body.user_name ? ` ${body.user_name}` : ''}\n`);
  return body.ret_code === '0000' ? 0 : 1;
}

if (isEntry(import.meta.url)) process.exitCode = await runCommand('verify', () => main(process.argv.slice(2)));
