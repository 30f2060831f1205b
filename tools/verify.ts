/**
 * `ehc-edge verify <code>`: verify one code through the running appliance's HIS port and print the
 * answer with personal data masked. Exit 0 for 0000, 1 for a rejection, 3 when the appliance is unreachable.
 */
import { maskDeep } from '../src/platform/mask.ts';
import { act, CliError, defineCommand, EXIT, hisTarget, isEntry, loadCliConfig, runCli, type CommonOptions } from './lib/cli.ts';

export function command() {
  const cmd = defineCommand(
    'verify',
    'verify one code through the running appliance',
    'Verify one health code through the running appliance (POST /v1/verify on the HIS port) and print the answer with personal data masked. Exits 1 when the code is rejected.',
  )
    .argument('<code>', 'the health code text as the scanner reads it')
    .option('--defer', 'let the appliance answer 202 and decide later when the home system is unreachable');
  return act<CommonOptions & { defer?: boolean }>(cmd, async (values, [code]) => {
    const target = hisTarget(values.url ? undefined : loadCliConfig(values), values);
    let res: Response;
    try {
      res = await fetch(`${target.url}/v1/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${target.key ?? ''}` },
        body: JSON.stringify({ ehealth_code: code, ...(values.defer ? { defer: true } : {}) }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new CliError(EXIT.UNREACHABLE, `appliance unreachable at ${target.url}: ${(err as Error).message}`);
    }
    if (res.status === 401 || res.status === 403) throw new CliError(EXIT.USAGE, `the appliance refused the key (HTTP ${res.status})`);
    const body = maskDeep(await res.json()) as Record<string, unknown>;
    if (values.json) process.stdout.write(JSON.stringify({ http_status: res.status, ...body }, null, 2) + '\n');
    else process.stdout.write(`${res.status} ${body.ret_code} ${body.ret_msg}${body.decided_by ? ` (${body.decided_by})` : ''}${body.id_no ? ` ${body.id_no}` : ''}${body.user_name ? ` ${body.user_name}` : ''}\n`);
    return body.ret_code === '0000' ? EXIT.OK : EXIT.FAILURE;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command(), argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
