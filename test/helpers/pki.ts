/**
 * A throwaway PKI for mutual-TLS tests, made at test time with the openssl CLI (EC P-256):
 * a CA with a server certificate (SAN 127.0.0.1, localhost) and a client certificate, and a second,
 * unrelated CA with its own server and client certificates (for "wrong CA" cases).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
  otherServerCert: string;
  otherServerKey: string;
  otherClientCert: string;
  otherClientKey: string;
}

/** Why openssl cannot be used, or null when it can. */
export function opensslMissing(): string | null {
  try {
    execFileSync('openssl', ['version'], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `openssl CLI not available (${(err as Error).message}); install the openssl package`;
  }
}

export function makePki(dir: string): Pki {
  const f = (name: string) => path.join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe', cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  const ca = (name: string) =>
    ssl('req', '-x509', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-subj', `/CN=ehc-edge test ${name}`, '-days', '2',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, caName: string, cn: string, ext: string) => {
    ssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${caName}.pem`), '-CAkey', f(`${caName}.key`), '-CAcreateserial',
      '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(ext));
  };
  ca('ca');
  ca('other-ca');
  leaf('server', 'ca', 'localhost', 'server.ext');
  leaf('client', 'ca', 'appliance-client', 'client.ext');
  leaf('other-server', 'other-ca', 'localhost', 'server.ext');
  leaf('other-client', 'other-ca', 'appliance-client', 'client.ext');
  return {
    dir,
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    otherCa: f('other-ca.pem'),
    otherServerCert: f('other-server.pem'),
    otherServerKey: f('other-server.key'),
    otherClientCert: f('other-client.pem'),
    otherClientKey: f('other-client.key'),
  };
}
