/**
 * What the schema cannot see and the service must not find out half-started: checks of the world a
 * valid config points at, run by main.ts before anything opens. Each problem is a ConfigError
 * (`file: key: what to fix`), so the process exits 2 and the unit's RestartPreventExitStatus=2 stops
 * the restart loop instead of retrying a start that cannot succeed.
 *
 * - TLS files (`his.tls.*`, `upstream.tls.*`): readable by this process, PEM that parses, and a
 *   certificate that belongs to its private key.
 * - Listen addresses (`his.listen`, `simulator.listen` when enabled): free to bind.
 * - Placeholders: an API key or app secret still carrying the shipped `CHANGE-ME` text. Accepted
 *   only with the built-in simulator on (a demo box talks to nothing real).
 *
 * The CLI loads the same config without these checks: an engineer can run `ehc-edge status` on a box
 * that is not configured yet.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { ConfigError } from './load.ts';
import type { ApplianceConfig } from './schema.ts';

const PLACEHOLDER = /change[-_ ]?me/i;

function readable(config: ApplianceConfig, key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const fix =
      code === 'ENOENT'
        ? 'the file does not exist: put it there or correct the path'
        : code === 'EACCES'
          ? 'the service user cannot read it: chown root:ehc-edge and chmod 0640 (0600 owned by ehc-edge for a private key)'
          : `cannot read it (${code})`;
    throw new ConfigError(config.configPath, key, `${file}: ${fix}`);
  }
}

function certificate(config: ApplianceConfig, key: string, file: string): X509Certificate {
  const pem = readable(config, key, file);
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(config.configPath, key, `${file}: not a PEM certificate (${(err as Error).message})`);
  }
}

function privateKey(config: ApplianceConfig, key: string, file: string): KeyObject {
  const pem = readable(config, key, file);
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(config.configPath, key, `${file}: not a PEM private key, or an encrypted one (${(err as Error).message})`);
  }
}

/** a certificate/key pair: both readable and the certificate's public key is the key's */
function pair(config: ApplianceConfig, prefix: string, certFile: string, keyFile: string): void {
  const cert = certificate(config, `${prefix}.cert`, certFile);
  const key = privateKey(config, `${prefix}.key`, keyFile);
  if (!cert.checkPrivateKey(key)) {
    throw new ConfigError(config.configPath, `${prefix}.key`, `${keyFile} is not the private key of ${certFile} (subject ${cert.subject.replace(/\n/g, ', ')}): configure the matching pair`);
  }
}

export function checkTlsFiles(config: ApplianceConfig): void {
  const his = config.his.tls;
  if (his) {
    pair(config, 'his.tls', his.cert, his.key);
    if (his.ca) certificate(config, 'his.tls.ca', his.ca);
  }
  const up = config.upstream.tls;
  if (up) {
    if (up.ca) certificate(config, 'upstream.tls.ca', up.ca);
    if (up.cert && up.key) pair(config, 'upstream.tls', up.cert, up.key);
    else if (up.cert || up.key) throw new ConfigError(config.configPath, up.cert ? 'upstream.tls.key' : 'upstream.tls.cert', 'upstream.tls.cert and upstream.tls.key go together (mutual TLS): give both or neither');
  }
}

export function checkPlaceholders(config: ApplianceConfig): void {
  if (config.simulator.enabled) return;
  const fix = 'still the shipped placeholder: generate a key with `openssl rand -hex 32` (or store `sm3:<hex digest>`)';
  config.his.apiKeys.forEach((k, i) => {
    if (PLACEHOLDER.test(k)) throw new ConfigError(config.configPath, `his.apiKeys.${i}`, fix);
  });
  config.admin.apiKeys.forEach((k, i) => {
    if (PLACEHOLDER.test(k)) throw new ConfigError(config.configPath, `admin.apiKeys.${i}`, fix);
  });
  if (PLACEHOLDER.test(config.upstream.appSecret)) {
    throw new ConfigError(config.configPath, 'upstream.appSecret', 'still the shipped placeholder: put the app secret the home card system issued for this appliance');
  }
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

/** bind and close at once: a port taken by another process is a config problem, said before anything starts */
function listenProblem(listen: string): Promise<string | undefined> {
  const { host, port } = splitListen(listen);
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      resolve(
        err.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is already in use by another process: stop it, or choose another address`
          : err.code === 'EADDRNOTAVAIL'
            ? `${host} is not an address of this machine: use one of its addresses (or 0.0.0.0)`
            : err.code === 'EACCES'
              ? `port ${port} needs privileges the service does not have: use a port above 1023`
              : `cannot listen on ${listen} (${err.code ?? err.message})`,
      );
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}

async function checkListen(config: ApplianceConfig): Promise<void> {
  const addresses: Array<[string, string]> = [['his.listen', config.his.listen]];
  if (config.simulator.enabled) addresses.push(['simulator.listen', config.simulator.listen]);
  for (const [key, listen] of addresses) {
    const problem = await listenProblem(listen);
    if (problem) throw new ConfigError(config.configPath, key, problem);
  }
}

/** every check, in the order an engineer fixes them; throws the first ConfigError */
export async function checkStartup(config: ApplianceConfig): Promise<void> {
  checkPlaceholders(config);
  checkTlsFiles(config);
  await checkListen(config);
}
