/**
 * The home-card-system simulator: both methods the appliance calls (ehc.ehealthcode.verify and
 * ehn.ehealthcard.syncCheckErhcInfo) at `POST /ehc` (method in the body), over loopback HTTP or
 * HTTPS with mutual TLS (client certificate required, TLS ≥ 1.2). It speaks the national envelope
 * (src/protocol/envelope.ts) per registered app and dialect, reads codes of the card systems it knows
 * and answers identities from a small deterministic population.
 *
 * Each app speaks its dialect (a shipped profile or an inline one): body form, per-method paths,
 * field names, answer shape. It also takes the province methods: the daily card-usage upload
 * (ehc.ehealthcode.usecarddate, ≤ 500 records) and reading-terminal registration (表6.4 fields).
 *
 * Answers: 0000 identity · 1003 version other than 1.0.0 · 1008 unknown app (no digest: it has no secret to digest with) · 9003 bad
 * digest · 1005 unknown method · 9001 missing biz fields · 3002 repeated out_verify_no (per app) ·
 * 2002 illegal / foreign-to-it code · 2003/2004 bad VALID · 2001 expired · 3001 no such person.
 */
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { DialectConfig } from '../../src/protocol/upstream.ts';
import { formatCst } from '../../src/platform/time.ts';
import { EhcError, RETURN_CODES, isReturnCode } from '../../src/errors.ts';
import { openRequest, sealResponse, type OpenedRequest } from '../../src/protocol/envelope.ts';
import type { Dialect } from '../../src/protocol/dialect.ts';
import { loadDialect } from '../../src/protocol/dialect-profiles.ts';
import { decodeRequestBody, methodUrl } from '../../src/protocol/transport.ts';
import { METHOD_CROSS_DOMAIN, METHOD_REGISTER_TERMINAL, METHOD_USECARDDATE, METHOD_VERIFY } from '../../src/protocol/upstream.ts';
import { checkTerminalRegistration, checkUsecarddate } from '../../src/protocol/province.ts';
import { SimCardSystem, splitCode, type CardSystemSpec } from './card-system.ts';
import { makePopulation, type Person } from './population.ts';

export const DEFAULT_APP_ID = 'demo-appliance-01';
export const DEFAULT_APP_SECRET = 'BEE975CC71E21F3FE87DE9F7121DE31F09B93D1AC804A60BBF877C240EBB0FC6';
export const DEFAULT_LOCAL_EHCIN = '3502A0001';
export const DEFAULT_FOREIGN_EHCIN = '3501A0002';
export const SIMULATOR_PATH = '/ehc';
export const SUPPORTED_VERSIONS = new Set(['1.0.0']);

export interface SimApp {
  appId: string;
  secret: string;
  /** a shipped profile's name or an inline dialect (default national-v3.1) */
  dialect?: DialectConfig;
  /** the fixed key of `key: fixed` dialects */
  appKey?: string;
}

export interface SimulatorOptions {
  /** loopback only: 127.0.0.1 (default), ::1 or localhost */
  host?: string;
  /** 0 (default) picks a free port */
  port?: number;
  /** mutual TLS: server cert/key and the CA that client certificates must chain to (file paths) */
  tls?: { cert: string; key: string; ca: string };
  apps?: SimApp[];
  /** card systems it can read; default: the local one (if keyFile) and a foreign one with fixed keys */
  cardSystems?: CardSystemSpec[];
  /** the appliance's SoftCard key file: the local card system shares its ehcid/validity keys */
  keyFile?: string;
  localEhcin?: string;
  foreignEhcin?: string;
  population?: Person[];
  /** clock for expiry checks */
  now?: () => Date;
}

export interface ReceivedCall {
  method: string;
  out_verify_no: string;
  ehealth_code: string;
  term_id: string;
  app_id: string;
  at: string;
  /** biz field names as they arrived (the dialect's wire names) */
  wireFields: string[];
  /** the body was form-urlencoded */
  form: boolean;
  /** request path */
  path: string;
}

/** A province message the simulator accepted (usage upload batch or terminal registration). */
export interface ReceivedProvinceMessage {
  method: string;
  app_id: string;
  biz: Record<string, unknown>;
}

export interface SimulatorHandle {
  url: string;
  port: number;
  host: string;
  cardSystems: SimCardSystem[];
  population: Person[];
  close(): Promise<void>;
  received(): ReceivedCall[];
  /** usage-upload batches and terminal registrations accepted (repeats answered 3002 are not listed) */
  province(): ReceivedProvinceMessage[];
  /** TCP connections accepted so far (keep-alive shows as fewer connections than calls) */
  connections(): number;
  /** true: close the listener and drop connections (connections are refused); false: listen again */
  setDown(down: boolean): Promise<void>;
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;
const MAX_BODY = 256 * 1024;

/** Card-system profile record of a person, shaped like the seed's verify answer (附录A §3.4.1.2). */
export function identityRecord(person: Person, system: SimCardSystem, ehcid: string): Record<string, string> {
  const mindex = createHash('sm3').update(`${system.ehcin}|${person.idType}|${person.idNo}`).digest('hex').toUpperCase();
  const x = createHash('sm3').update(`xman|${person.idNo}`).digest('hex');
  const xmanId = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
  return {
    birth_place: person.birthPlace,
    birthday: person.birthday,
    card_type: '01',
    ehealth_card_id: ehcid.toUpperCase(),
    extra: JSON.stringify({ id0000: person.idNo, icztbh: '2', icztmc: '有效' }),
    id_no: person.idNo,
    id_type: person.idType,
    issuer_city_code: system.ehcin.slice(0, 4),
    issuer_org_code: system.ehcin,
    issuer_org_name: system.name,
    issuer_province_code: system.ehcin.slice(0, 2),
    mindex_id: mindex,
    mobile_phone: person.phone,
    user_name: person.name,
    user_sex: person.sex,
    xman_id: xmanId,
  };
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) throw new Error(`listen address ${host} is not loopback`);
  const now = opts.now ?? (() => new Date());
  const apps = new Map<string, { secret: string; dialect: Dialect }>();
  for (const a of opts.apps ?? [{ appId: DEFAULT_APP_ID, secret: DEFAULT_APP_SECRET }]) apps.set(a.appId, { secret: a.secret, dialect: loadDialect(a.dialect, { appKey: a.appKey }) });
  const specs: CardSystemSpec[] = opts.cardSystems ?? [
    ...(opts.keyFile ? [{ ehcin: opts.localEhcin ?? DEFAULT_LOCAL_EHCIN, keyFile: opts.keyFile, name: '本地卡管系统 (simulated)' }] : []),
    { ehcin: opts.foreignEhcin ?? DEFAULT_FOREIGN_EHCIN, name: '异地卡管系统 (simulated)' },
  ];
  const cardSystems = specs.map((s) => new SimCardSystem(s));
  const byEhcin = new Map(cardSystems.map((c) => [c.ehcin, c]));
  const population = opts.population ?? makePopulation();
  const people = new Map(population.map((p) => [`${p.idType}|${p.idNo.toUpperCase()}`, p]));
  const received: ReceivedCall[] = [];
  const province: ReceivedProvinceMessage[] = [];
  const serials = new Set<string>();

  function answer(req: OpenedRequest | undefined, appId: string, method: string, version: string, code: string, biz?: Record<string, unknown>) {
    const app = req ? { secret: req.secret, dialect: req.dialect } : apps.get(appId);
    const msg = isReturnCode(code) ? RETURN_CODES[code] : 'error';
    return sealResponse({
      retCode: code,
      retMsg: msg,
      appId,
      method,
      version,
      timestamp: formatCst(now()),
      ...(biz ? { biz } : {}),
      ...(app ? { secret: app.secret, dialect: app.dialect } : {}),
    });
  }

  function handle(body: unknown, path: string, form: boolean): object {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const appId = typeof b.app_id === 'string' ? b.app_id : '';
    const method = typeof b.method === 'string' ? b.method : '';
    const version = typeof b.version === 'string' ? b.version : '1.0.0';
    let opened: OpenedRequest;
    try {
      opened = openRequest(body, (id) => apps.get(id));
    } catch (err) {
      const e = err instanceof EhcError ? err : new EhcError('9999', String(err));
      return answer(undefined, appId, method, version, e.code);
    }
    const reply = (code: string, biz?: Record<string, unknown>) => answer(opened, appId, method, version, code, biz);
    const dialect = opened.dialect;
    if (![METHOD_VERIFY, METHOD_CROSS_DOMAIN, METHOD_USECARDDATE, METHOD_REGISTER_TERMINAL].includes(method)) return reply('1005');
    // a dialect with per-method paths: the method must arrive at its own path
    if (Object.keys(dialect.paths).length && methodUrl(`http://x${SIMULATOR_PATH}`, method, dialect).pathname !== path) return reply('1005');
    if (!SUPPORTED_VERSIONS.has(version) && version !== dialect.version) return reply('1003');
    if ((dialect.body === 'form') !== form) return reply('9008');
    const biz = opened.biz;
    const serial = typeof biz.out_verify_no === 'string' ? biz.out_verify_no : '';
    const code = typeof biz.ehealth_code === 'string' ? biz.ehealth_code : '';
    // a verify without a code is answered 9001 and is not a transaction: the appliance's health probe
    if (!(method === METHOD_VERIFY && !code)) received.push({ method, out_verify_no: serial, ehealth_code: code, term_id: String(b.term_id), app_id: appId, at: now().toISOString(), wireFields: Object.keys(opened.wireBiz), form, path });
    if (method === METHOD_USECARDDATE || method === METHOD_REGISTER_TERMINAL) {
      try {
        if (method === METHOD_USECARDDATE) checkUsecarddate(biz);
        else checkTerminalRegistration(biz);
      } catch (err) {
        return reply(err instanceof EhcError ? err.code : '9001');
      }
      const key = `${appId}\n${method}\n${serial}`;
      if (serials.has(key)) return reply('3002');
      serials.add(key);
      province.push({ method, app_id: appId, biz });
      return reply('0000', method === METHOD_USECARDDATE ? { out_verify_no: serial, received_num: String((biz.list as unknown[]).length) } : { out_verify_no: serial, term_record: String(biz.term_record) });
    }
    if (!serial || serial.length > 32 || !code) return reply('9001');
    const key = `${appId}\n${serial}`;
    if (serials.has(key)) return reply('3002');
    serials.add(key);
    try {
      const parts = splitCode(code);
      const system = byEhcin.get(parts.ehcin);
      if (!system) throw new EhcError('2002', `no card system ${parts.ehcin} here`);
      const identity = system.decryptEhcid(parts.ehcid);
      if (parts.tag === '0' && system.decryptValidity(parts.valid).getTime() < now().getTime()) throw new EhcError('2001', 'code expired');
      const person = people.get(`${identity.idType}|${identity.idNo.toUpperCase()}`);
      if (!person) throw new EhcError('3001', 'no such card holder');
      return reply('0000', identityRecord(person, system, parts.ehcid));
    } catch (err) {
      return reply(err instanceof EhcError ? err.code : '9999');
    }
  }

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const send = (status: number, obj: object) => {
      const text = JSON.stringify(obj);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const path = (req.url ?? '').split('?')[0]!;
    if (req.method !== 'POST' || (path !== SIMULATOR_PATH && !path.startsWith(`${SIMULATOR_PATH}/`))) return send(404, { error: `POST ${SIMULATOR_PATH} (or ${SIMULATOR_PATH}/<method path>) only` });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(413, { error: 'body too large' });
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let decoded: ReturnType<typeof decodeRequestBody>;
      try {
        decoded = decodeRequestBody(Buffer.concat(chunks).toString('utf8'), req.headers['content-type']);
      } catch {
        return send(200, { ret_code: '9008', ret_msg: RETURN_CODES['9008'] });
      }
      send(200, handle(decoded.fields, path, decoded.form));
    });
  };

  const server: http.Server = opts.tls
    ? https.createServer(
        {
          cert: readFileSync(opts.tls.cert),
          key: readFileSync(opts.tls.key),
          ca: readFileSync(opts.tls.ca),
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
        },
        onRequest,
      )
    : http.createServer(onRequest);
  server.on('clientError', (_err, socket) => socket.destroy());
  let connectionCount = 0;
  server.on('connection', () => connectionCount++);

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  await listen(opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${urlHost}:${port}${SIMULATOR_PATH}`,
    port,
    host,
    cardSystems,
    population,
    received: () => received.map((r) => ({ ...r })),
    province: () => province.map((p) => structuredClone(p)),
    connections: () => connectionCount,
    setDown: async (down) => {
      if (down) await stop();
      else if (!server.listening) await listen(port);
    },
    close: stop,
  };
}
