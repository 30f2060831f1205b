/**
 * 密钥灌装 — key loading for the crypto card, and a look at what the card and the config say.
 *
 *   node --import tsx tools/card-keys.ts import --keyfile F --role ehcid --index 1 --key HEX32
 *   node --import tsx tools/card-keys.ts import --keyfile F --from-soft soft-card.keys.json [--config C]
 *       writes the SoftCard's ehcid/validity/storage/mac keys and SM2 pair into a softsdf key file at the
 *       indexes the config uses (card.keys), so SoftCard and SdfCard+softsdf give the same answers
 *   node --import tsx tools/card-keys.ts wrap --kek HEX32 --key HEX32
 *       the key wrapped under a KEK (SM4-ECB), for card.sdf.wrappedKeys on cards without keys by index
 *   node --import tsx tools/card-keys.ts show [--config C]
 *       device info of the configured card, the key indexes the config uses, and whether each answers
 *
 * The softsdf key file is the software SDF library's store (firmware-bridge/softsdf): plain text, mode
 * 0600, replaced atomically. A real card is loaded with the vendor's own tool; `show` works on both.
 */
import { createCipheriv } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { sm2 } from 'sm-crypto-v2';
import { DEFAULT_KEY_INDEXES, type KeyMap, type KeyRole } from '../src/crypto/card.ts';
import { loadConfig, configPathFrom } from '../src/config/load.ts';
import { SDF_DEFAULTS } from '../src/config/schema.ts';
import { parseEnvelope, SdfCard } from '../src/crypto/sdf-card.ts';
import type { CardPrimitives } from '../src/crypto/card.ts';
import { SdfDevice, type SdfError, type WrapAlg } from '../firmware-bridge/index.ts';
import { auditOffline } from '../src/ops/audit-offline.ts';
import { openToolCard } from './lib/card.ts';
import { createLogger } from '../src/platform/log.ts';
import { replaceFileDurablySync } from '../src/platform/durable-write.ts';
import { act, CliError, cliLang, defineCommand, defineGroup, EXIT, isEntry, runCli, tr, type CommonOptions } from './lib/cli.ts';

const HEX32 = /^[0-9a-fA-F]{32}$/;
export const SYMMETRIC_ROLES = ['ehcid', 'validity', 'storage', 'mac'] as const;

export type SoftsdfEntry =
  | { kind: 'sym'; index: number; key: string }
  | { kind: 'sm2' | 'sm2enc'; index: number; private: string; public: string }
  | { kind: 'pin'; index: number; password: string };

function lineOf(e: SoftsdfEntry): string {
  if (e.kind === 'sym') return `sym ${e.index} ${e.key.toLowerCase()}`;
  if (e.kind === 'pin') return `pin ${e.index} ${e.password}`;
  return `${e.kind} ${e.index} ${e.private.toLowerCase()} ${e.public.toLowerCase()}`;
}

function validate(e: SoftsdfEntry): void {
  if (!Number.isInteger(e.index) || e.index < 0 || e.index > 255) throw new CliError(EXIT.USAGE, `密钥索引 ${e.index}：softsdf 只有索引 0..255`, `key index ${e.index}: softsdf holds indexes 0..255`);
  if (e.kind === 'sym' && !HEX32.test(e.key)) throw new CliError(EXIT.USAGE, `索引 ${e.index} 的密钥须为 32 位十六进制（128 位 SM4 密钥）`, `key at index ${e.index} must be 32 hex digits (a 128-bit SM4 key)`);
  if (e.kind === 'sm2' || e.kind === 'sm2enc') {
    if (!/^[0-9a-fA-F]{64}$/.test(e.private)) throw new CliError(EXIT.USAGE, `索引 ${e.index} 的 SM2 私钥须为 64 位十六进制`, `SM2 private key at index ${e.index} must be 64 hex digits`);
    if (!/^04[0-9a-fA-F]{128}$/.test(e.public)) throw new CliError(EXIT.USAGE, `索引 ${e.index} 的 SM2 公钥须为 04‖X‖Y（130 位十六进制）`, `SM2 public key at index ${e.index} must be 04‖X‖Y (130 hex digits)`);
  }
  if (e.kind === 'pin' && !/^\S{1,63}$/.test(e.password)) throw new CliError(EXIT.USAGE, '密钥口令为 1..63 个字符，不含空格', 'a key password is 1..63 characters without spaces');
}

/** Write or replace entries (same kind and index) in a softsdf key file; keeps the others. */
export function importKeys(keyFile: string, entries: SoftsdfEntry[]): void {
  entries.forEach(validate);
  const lines = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').split('\n').filter((l) => l.trim() !== '') : ['# softsdf key file (ehc-edge tools/card-keys.ts): sym|sm2|pin <index> …'];
  const replaced = new Set(entries.map((e) => `${e.kind} ${e.index}`));
  const kept = lines.filter((l) => {
    const [kind, index] = l.trim().split(/\s+/);
    return !replaced.has(`${kind} ${index}`);
  });
  const text = [...kept, ...entries.map(lineOf)].join('\n') + '\n';
  replaceFileDurablySync(keyFile, text, { mode: 0o600 });
}

/** The entries that load a SoftCard key file's keys at the config's indexes. */
export function entriesFromSoftKeyFile(softKeyFile: string, keys: KeyMap): SoftsdfEntry[] {
  const doc = JSON.parse(readFileSync(softKeyFile, 'utf8')) as Record<KeyRole | 'sm2', unknown>;
  const out: SoftsdfEntry[] = SYMMETRIC_ROLES.map((role) => ({ kind: 'sym', index: keys[role], key: String(doc[role]) }));
  const pair = doc.sm2 as { private: string; public?: string } | undefined;
  if (pair?.private) out.push({ kind: 'sm2', index: keys.sign, private: pair.private, public: pair.public ?? sm2.getPublicKeyFromPrivateKey(pair.private) });
  return out;
}

/**
 * The digital envelope a card system makes for a site: the key SM2-encrypted (GB/T 32918.4, C1C3C2)
 * to the card's encryption public key (04‖X‖Y or X‖Y hex, as `ehc-edge card enc-key` prints it).
 * Hex C1 (x‖y) ‖ C3 ‖ C2, for card.sdf.envelopes. Made with sm-crypto-v2, independent of any card.
 */
export function sealEnvelope(encPublicKeyHex: string, keyHex: string): string {
  const pub = encPublicKeyHex.length === 128 ? `04${encPublicKeyHex}` : encPublicKeyHex;
  if (!/^04[0-9a-fA-F]{128}$/.test(pub)) throw new CliError(EXIT.USAGE, '加密公钥须为 04‖X‖Y（130 位十六进制）或 X‖Y（128 位）', 'the encryption public key must be 04‖X‖Y (130 hex digits) or X‖Y (128)');
  if (!HEX32.test(keyHex)) throw new CliError(EXIT.USAGE, '密钥须为 32 位十六进制（128 位 SM4 密钥）', 'the key must be 32 hex digits (a 128-bit SM4 key)');
  return sm2.doEncrypt(Buffer.from(keyHex, 'hex'), pub, 1).toUpperCase();
}

/** SM4-ECB of a 16-byte key under a KEK: what SDF_ImportKeyWithKEK (SGD_SM4_ECB) unwraps. */
export function wrapKey(kekHex: string, keyHex: string): string {
  if (!HEX32.test(kekHex) || !HEX32.test(keyHex)) throw new CliError(EXIT.USAGE, 'kek 与 key 须各为 32 位十六进制', 'kek and key must be 32 hex digits each');
  const c = createCipheriv('sm4-ecb', Buffer.from(kekHex, 'hex'), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.from(keyHex, 'hex')), c.final()]).toString('hex').toUpperCase();
}

/** SM4-CBC wrap as softsdf (and GmSSL-style libraries) unwrap it: IV ‖ SM4-CBC(IV, key ‖ PKCS#7), 48 bytes. */
export function wrapKeyCbc(kekHex: string, keyHex: string, iv: Buffer): string {
  if (!HEX32.test(kekHex) || !HEX32.test(keyHex) || iv.length !== 16) throw new CliError(EXIT.USAGE, 'kek 与 key 须各为 32 位十六进制，IV 为 16 字节', 'kek and key must be 32 hex digits each, the IV 16 bytes');
  const c = createCipheriv('sm4-cbc', Buffer.from(kekHex, 'hex'), iv);
  return Buffer.concat([iv, c.update(Buffer.from(keyHex, 'hex')), c.final()]).toString('hex').toUpperCase();
}

interface ShowReport {
  config: string;
  driver: string;
  keys: Record<string, number>;
  soft_key_file?: string;
  card?: { ok: boolean; detail: string; device: Record<string, unknown> };
  roles?: Array<{ role: string; index: number; source: string; state: string }>;
  sign?: { index: number; public_key?: string; state: string };
}

async function show(configFile: string, json: boolean): Promise<number> {
  const config = loadConfig(configFile);
  const keys = config.card.keys;
  const report: ShowReport = { config: configFile, driver: config.card.driver, keys: { ...keys } };
  const lines: string[] = [
    `${tr('配置：', 'config: ')}${configFile}`,
    `${tr('驱动：', 'driver: ')}${config.card.driver}`,
    tr('密钥索引：', 'key indexes: ') + Object.entries(keys).map(([r, i]) => `${r}=${i}${i === DEFAULT_KEY_INDEXES[r as KeyRole] ? '' : tr('（已重映射）', ' (remapped)')}`).join(', '),
  ];
  const print = (code: number) => {
    console.log(json ? JSON.stringify(report, null, 2) : lines.join('\n'));
    return code;
  };
  if (config.card.driver !== 'sdf' || !config.card.sdf) {
    report.soft_key_file = config.card.keyFile;
    lines.push(`${tr('软卡密钥文件：', 'soft card key file: ')}${config.card.keyFile}`);
    return print(0);
  }
  const card = await SdfCard.open(config.card.sdf, keys, createLogger({ level: 'error' }));
  try {
    const h = await card.health();
    report.card = { ok: h.ok, detail: h.detail, device: { ...(h.device ?? {}) } };
    lines.push(`${tr('密码卡：', 'card: ')}${h.ok ? tr('就绪', 'ready') : tr('不可用', 'DOWN')} — ${h.detail}`);
    for (const [k, v] of Object.entries(h.device ?? {})) lines.push(`  ${k}: ${v}`);
    if (!h.ok) return print(1);
    const sdf = config.card.sdf;
    report.roles = [];
    for (const role of SYMMETRIC_ROLES) {
      // the report (--json) keeps its English values; the lines say them in the run's language
      const [source, sourceText] = sdf.envelopes?.[role]
        ? [`envelope to encryption key ${sdf.isk ?? keys.sign}`, tr(`发给加密密钥 ${sdf.isk ?? keys.sign} 的数字信封`, `envelope to encryption key ${sdf.isk ?? keys.sign}`)]
        : sdf.wrappedKeys?.[role]
          ? [`wrapped under KEK ${sdf.kek} (${sdf.kekAlg ?? SDF_DEFAULTS.kekAlg})`, tr(`由 KEK ${sdf.kek} 包装（${sdf.kekAlg ?? SDF_DEFAULTS.kekAlg}）`, `wrapped under KEK ${sdf.kek} (${sdf.kekAlg ?? SDF_DEFAULTS.kekAlg})`)]
          : sdf.quirks === 'sym-key-handle'
            ? ['internal index (vendor extension)', tr('卡内索引（厂商扩展）', 'internal index (vendor extension)')]
            : ['none in the config', tr('配置中没有', 'none in the config')];
      const answer = await card.sm4Encrypt(keys[role], Buffer.alloc(16)).then(() => 'present', (e: Error) => `NOT USABLE: ${e.message}`);
      report.roles.push({ role, index: keys[role], source, state: answer });
      lines.push(tr(`  ${role.padEnd(8)} 索引 ${keys[role]}（${sourceText}）：${stateText(answer)}`, `  ${role.padEnd(8)} index ${keys[role]} (${sourceText}): ${stateText(answer)}`));
    }
    const pub = await card.sm2PublicKey(keys.sign).then((p) => p.toString('hex').toUpperCase(), (e: Error) => `NOT USABLE: ${e.message}`);
    report.sign = { index: keys.sign, state: pub.startsWith('NOT USABLE') ? pub : 'present', ...(pub.startsWith('NOT USABLE') ? {} : { public_key: pub }) };
    const signState = pub.startsWith('NOT USABLE') ? stateText(pub) : `${tr('公钥', 'public key')} ${pub}`;
    lines.push(tr(`  sign     索引 ${keys.sign}：${signState}`, `  sign     index ${keys.sign}: ${signState}`));
    return print(report.roles.every((r) => r.state === 'present') && report.sign.state === 'present' ? 0 : 1);
  } finally {
    await card.close();
  }
}

/** A key's state as `show` prints it: present, or NOT USABLE with the card's reason. */
function stateText(state: string): string {
  if (state === 'present') return tr('可用', 'present');
  return state.replace(/^NOT USABLE: /, tr('不可用：', 'NOT USABLE: '));
}

/** A refused input as exit 2: our own CliError as it is, a lower module's error (e.g. the file system's) passed on. */
function asUsage(err: unknown): CliError {
  return err instanceof CliError ? err : new CliError(EXIT.USAGE, (err as Error).message);
}

function needSdf(config: ReturnType<typeof loadConfig>): NonNullable<ReturnType<typeof loadConfig>['card']['sdf']> {
  if (config.card.driver !== 'sdf' || !config.card.sdf) throw new CliError(EXIT.USAGE, 'card.driver 不是 sdf：这些子命令操作 GM/T 0018 密码卡（card.sdf.library）', 'card.driver is not sdf: these subcommands talk to a GM/T 0018 card (card.sdf.library)');
  return config.card.sdf;
}

function intArg(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(EXIT.USAGE, `${name} 须为密钥索引 0..65535`, `${name} must be a key index 0..65535`);
  return n;
}

function roleArg(role: string): (typeof SYMMETRIC_ROLES)[number] {
  if (!(SYMMETRIC_ROLES as readonly string[]).includes(role)) throw new CliError(EXIT.USAGE, `--role 须为以下之一：${SYMMETRIC_ROLES.join(', ')}`, `--role must be one of ${SYMMETRIC_ROLES.join(', ')}`);
  return role as (typeof SYMMETRIC_ROLES)[number];
}

/**
 * The card's device alone (no application keys loaded): provisioning works on a card that is not yet
 * ready. A library without the function is named (the addon's "the library has no SDF_…"); exit 1.
 */
async function withDevice<T>(sdf: NonNullable<ReturnType<typeof loadConfig>['card']['sdf']>, work: (d: SdfDevice) => Promise<T>): Promise<T> {
  let device: SdfDevice;
  try {
    device = await SdfDevice.open({ library: sdf.library, sessions: 1, quirks: sdf.quirks, keyPassword: sdf.keyPassword });
  } catch (err) {
    throw new CliError(EXIT.FAILURE, `无法打开密码卡（${sdf.library}）：${(err as Error).message}`, `cannot open the card (${sdf.library}): ${(err as Error).message}`);
  }
  try {
    return await work(device);
  } catch (err) {
    const e = err as SdfError;
    if (e.sdr === 'ESYMBOL') throw new CliError(EXIT.FAILURE, `${e.message} — 此密码卡的库没有 ${e.fn}；这一步请用厂商的工具`, `${e.message} — this card's library does not offer ${e.fn}; use its vendor's tool for this step`);
    throw new CliError(EXIT.FAILURE, e.message);
  } finally {
    await device.close();
  }
}

type AuditOutcome = { recorded: true; seq: number } | { recorded: false; why: string };

/** One audit record of a card change in the appliance's trail (the appliance must be stopped: one writer). */
async function auditCardChange(config: ReturnType<typeof loadConfig>, action: string, detail: Record<string, unknown>): Promise<AuditOutcome> {
  let card: CardPrimitives | undefined;
  try {
    card = await openToolCard(config);
    const [rec] = await auditOffline(config, card, [{ kind: 'key', action, detail }]);
    return { recorded: true, seq: rec!.seq };
  } catch (err) {
    return { recorded: false, why: (err as Error).message };
  } finally {
    await card?.close().catch(() => undefined);
  }
}

function auditLine(a: AuditOutcome): string {
  if (cliLang() === 'zh') return a.recorded ? `审计：已记录（序号 ${a.seq}）` : `审计：未记录 — ${a.why}`;
  return a.recorded ? `audit: recorded (seq ${a.seq})` : `audit: NOT recorded — ${a.why}`;
}

type ImportOptions = CommonOptions & { keyfile?: string; role?: string; index?: string; key?: string; fromSoft?: string; pin?: string };

export function command() {
  const configFile = (o: CommonOptions) => configPathFrom(o.config ? ['--config', o.config] : [], process.env);
  const imp = defineCommand(
    'import',
    tr('把密钥写入 softsdf 密钥文件（一个角色，或整个软卡密钥文件）', 'load keys into a softsdf key file (one role, or all of a SoftCard key file)'),
    tr(
      '把一个 SM4 密钥（--role、--index、--key），或用 --from-soft 把软卡的 ehcid/validity/storage/mac 密钥和 SM2 密钥对，按配置使用的索引（card.keys）写入 softsdf 密钥文件，使软卡与 SdfCard+softsdf 给出相同的结果。真实密码卡请用厂商自己的工具灌装。',
      "Writes one SM4 key (--role, --index, --key) or, with --from-soft, the SoftCard's ehcid/validity/storage/mac keys and SM2 pair into a softsdf key file at the indexes the config uses (card.keys), so SoftCard and SdfCard+softsdf give the same answers. A real card is loaded with the vendor's own tool.",
    ),
    { his: false },
  )
    .requiredOption('--keyfile <file>', tr('softsdf 密钥文件（SOFTSDF_KEYFILE）', 'the softsdf key file (SOFTSDF_KEYFILE)'))
    .option('--role <role>', `${tr('密钥角色：', 'key role: ')}${SYMMETRIC_ROLES.join(', ')}`)
    .option('--index <n>', tr('密钥索引（默认：该角色的默认索引）', "key index (default: the role's default index)"))
    .option('--key <hex32>', tr('SM4 密钥，32 位十六进制', 'the SM4 key, 32 hex digits'))
    .option('--from-soft <file>', tr('整个载入的软卡密钥文件（soft-card.keys.json）', 'a SoftCard key file (soft-card.keys.json) to load whole'))
    .option('--pin <password>', tr('签名索引的私钥访问口令', 'the private-key access password of the sign index'));
  act<ImportOptions>(imp, async (values) => {
    let entries: SoftsdfEntry[];
    let signIndex = values.index !== undefined ? Number(values.index) : DEFAULT_KEY_INDEXES.sign;
    if (values.fromSoft) {
      const keys = values.config || existsSync(configFile(values)) ? loadConfig(configFile(values)).card.keys : { ...DEFAULT_KEY_INDEXES };
      entries = entriesFromSoftKeyFile(values.fromSoft, keys);
      signIndex = keys.sign;
    } else {
      const role = roleArg(values.role ?? '');
      const index = values.index !== undefined ? Number(values.index) : DEFAULT_KEY_INDEXES[role as KeyRole];
      entries = [{ kind: 'sym', index, key: values.key ?? '' }];
    }
    if (values.pin) entries.push({ kind: 'pin', index: signIndex, password: values.pin });
    try {
      importKeys(values.keyfile!, entries);
    } catch (err) {
      throw asUsage(err);
    }
    if (values.json) console.log(JSON.stringify({ keyfile: values.keyfile, loaded: entries.map((e) => ({ kind: e.kind, index: e.index })) }, null, 2));
    else for (const e of entries) console.log(tr(`已载入 ${e.kind}，索引 ${e.index}`, `loaded ${e.kind} at index ${e.index}`));
    return EXIT.OK;
  });
  const wrap = defineCommand(
    'wrap',
    tr('用 KEK 包装密钥（SM4-ECB），用于 card.sdf.wrappedKeys', 'a key wrapped under a KEK (SM4-ECB), for card.sdf.wrappedKeys'),
    tr('用 KEK 包装的密钥（SM4-ECB）：即 SDF_ImportKeyWithKEK 解包的内容，用于不按索引存放密钥的密码卡的 card.sdf.wrappedKeys。输出为十六进制。', 'The key wrapped under a KEK (SM4-ECB): what SDF_ImportKeyWithKEK unwraps, for card.sdf.wrappedKeys on cards without keys by index. Printed as hex.'),
    { his: false },
  )
    .requiredOption('--kek <hex32>', tr('密钥加密密钥，32 位十六进制', 'the key-encryption key, 32 hex digits'))
    .requiredOption('--key <hex32>', tr('要包装的密钥，32 位十六进制', 'the key to wrap, 32 hex digits'));
  act<CommonOptions & { kek: string; key: string }>(wrap, async (values) => {
    let wrapped: string;
    try {
      wrapped = wrapKey(values.kek, values.key);
    } catch (err) {
      throw asUsage(err);
    }
    console.log(values.json ? JSON.stringify({ wrapped }) : wrapped);
    return EXIT.OK;
  });
  const showCmd = defineCommand('show', tr('配置的密码卡：设备信息、配置中的密钥引用、每个密钥是否可用', 'the configured card: device info, key references in the config, whether each key answers'), undefined, { his: false });
  act(showCmd, async (values) => show(configFile(values), !!values.json));

  const encKey = defineCommand('enc-key', tr('密码卡的 SM2 加密公钥（SDF_ExportEncPublicKey_ECC），供发卡系统制作数字信封', "the card's SM2 encryption public key (SDF_ExportEncPublicKey_ECC), for the card system to make envelopes to"), undefined, { his: false })
    .option('--index <n>', tr('密钥对索引（默认 card.sdf.isk，否则 card.keys.sign）', 'the key pair index (default card.sdf.isk, else card.keys.sign)'));
  act<CommonOptions & { index?: string }>(encKey, async (values) => {
    const config = loadConfig(configFile(values));
    const sdf = needSdf(config);
    const index = values.index !== undefined ? intArg('--index', values.index) : (sdf.isk ?? config.card.keys.sign);
    const pub = await withDevice(sdf, (d) => d.encPublicKey(index));
    const hex = `04${pub.toString('hex')}`.toUpperCase();
    const audit = await auditCardChange(config, 'card.enc-key.exported', { index });
    console.log(values.json ? JSON.stringify({ index, public_key: hex, audit }, null, 2) : `${hex}\n${auditLine(audit)}`);
    return EXIT.OK;
  });

  const envelope = defineCommand(
    'envelope',
    tr('发卡系统一方（演示、测试）：用密码卡加密公钥封装一个密钥', 'card-system side (demo, tests): seal a key to a card encryption public key'),
    tr(
      '制作发卡系统交给站点的数字信封：用密码卡的加密公钥（`ehc-edge card enc-key`）对密钥做 SM2 加密（C1C3C2）。现场由发卡系统完成这一步；密钥在设备上从不以明文存在。输出为十六进制。',
      "Makes the digital envelope a card system hands a site: the key SM2-encrypted (C1C3C2) to the card's encryption public key (`ehc-edge card enc-key`). On site the card system does this; the key never exists in clear at the appliance. Printed as hex.",
    ),
    { his: false },
  )
    .requiredOption('--public-key <hex>', tr('密码卡的加密公钥，04‖X‖Y', "the card's encryption public key, 04‖X‖Y"))
    .requiredOption('--key <hex32>', tr('SM4 密钥，32 位十六进制', 'the SM4 key, 32 hex digits'));
  act<CommonOptions & { publicKey: string; key: string }>(envelope, async (values) => {
    let sealed: string;
    try {
      sealed = sealEnvelope(values.publicKey, values.key);
    } catch (err) {
      throw asUsage(err);
    }
    console.log(values.json ? JSON.stringify({ envelope: sealed }) : sealed);
    return EXIT.OK;
  });

  const importEnvelope = defineCommand(
    'import-envelope',
    tr('在密码卡内检验发卡系统的数字信封（SDF_ImportKeyWithISK_ECC），并输出其配置项', "check a card system's envelope in the card (SDF_ImportKeyWithISK_ECC) and print its config entry"),
    tr(
      '在密码卡内打开数字信封，输出密钥校验值 SM4-ECB(密钥, 0¹²⁸) 供与发卡系统的比对，以及要写入配置的 card.sdf.envelopes 项。记入审计。',
      "Opens the envelope inside the card, prints the key check value SM4-ECB(key, 0¹²⁸) for comparison with the card system's, and the card.sdf.envelopes entry to put in the config. Audited.",
    ),
    { his: false },
  )
    .requiredOption('--role <role>', `${tr('密钥角色：', 'key role: ')}${SYMMETRIC_ROLES.join(', ')}`)
    .requiredOption('--envelope <hex>', tr('数字信封：SM2 密文 C1 ‖ C3 ‖ C2，十六进制', 'the envelope: SM2 ciphertext C1 ‖ C3 ‖ C2, hex'));
  act<CommonOptions & { role: string; envelope: string }>(importEnvelope, async (values) => {
    const config = loadConfig(configFile(values));
    const sdf = needSdf(config);
    const role = roleArg(values.role);
    if (!/^(?:[0-9a-fA-F]{2}){112,}$/.test(values.envelope)) throw new CliError(EXIT.USAGE, '--envelope 须为十六进制：密钥的 SM2 密文 C1 ‖ C3 ‖ C2', '--envelope must be hex: the SM2 ciphertext C1 ‖ C3 ‖ C2 of the key');
    const isk = sdf.isk ?? config.card.keys.sign;
    const kcv = await withDevice(sdf, (d) => d.checkValue({ kind: 'envelope', isk, cipher: parseEnvelope(values.envelope) }));
    const check = kcv.subarray(0, 8).toString('hex').toUpperCase();
    const audit = await auditCardChange(config, 'card.envelope.imported', { role, index: config.card.keys[role], isk, kcv: check });
    const entry = { card: { sdf: { isk, envelopes: { [role]: values.envelope.toUpperCase() } } } };
    if (values.json) console.log(JSON.stringify({ role, kcv: check, config: entry, audit }, null, 2));
    else if (cliLang() === 'zh') console.log(`${role}：密码卡已打开数字信封；密钥校验值 ${check}\n写入配置（card.sdf.envelopes.${role}）：\n${JSON.stringify(entry, null, 2)}\n${auditLine(audit)}`);
    else console.log(`${role}: the card opened the envelope; key check value ${check}\nput in the config (card.sdf.envelopes.${role}):\n${JSON.stringify(entry, null, 2)}\n${auditLine(audit)}`);
    return EXIT.OK;
  });

  const generate = defineCommand(
    'generate',
    tr('在密码卡内生成存储/MAC 密钥（SDF_GenerateKeyWithKEK）并输出其包装数据', 'make a storage/MAC key inside the card (SDF_GenerateKeyWithKEK) and print its wrapped blob'),
    tr(
      '密码卡生成一个新的 128 位密钥，只以 KEK 包装后的形式交出；包装数据写入 card.sdf.wrappedKeys，密钥本身从不离开密码卡。用于只有本站点使用的密钥（storage、mac）。记入审计。',
      'The card makes a new 128-bit key and hands it out only wrapped under its KEK; the blob goes into card.sdf.wrappedKeys and the key itself never leaves the card. For keys only this site uses (storage, mac). Audited.',
    ),
    { his: false },
  )
    .requiredOption('--role <role>', tr('storage 或 mac', 'storage or mac'))
    .option('--kek <n>', tr('密码卡内的 KEK 索引（默认 card.sdf.kek）', 'the KEK index in the card (default card.sdf.kek)'))
    .option('--kek-alg <alg>', tr('sm4-ecb 或 sm4-cbc（默认 card.sdf.kekAlg，否则 sm4-ecb）', 'sm4-ecb or sm4-cbc (default card.sdf.kekAlg, else sm4-ecb)'));
  act<CommonOptions & { role: string; kek?: string; kekAlg?: string }>(generate, async (values) => {
    const config = loadConfig(configFile(values));
    const sdf = needSdf(config);
    const role = roleArg(values.role);
    if (role !== 'storage' && role !== 'mac') throw new CliError(EXIT.USAGE, 'generate 只生成本站点自用的密钥：--role storage 或 mac（ehcid/validity 密钥由发卡系统以数字信封提供）', 'generate makes keys only this site uses: --role storage or mac (ehcid/validity keys come from the card system as envelopes)');
    const kek = values.kek !== undefined ? intArg('--kek', values.kek) : sdf.kek;
    if (kek === undefined) throw new CliError(EXIT.USAGE, '没有 KEK 索引：请给出 --kek 或 card.sdf.kek', 'no KEK index: give --kek or card.sdf.kek');
    const alg = (values.kekAlg ?? sdf.kekAlg ?? SDF_DEFAULTS.kekAlg) as WrapAlg;
    if (alg !== 'sm4-ecb' && alg !== 'sm4-cbc') throw new CliError(EXIT.USAGE, '--kek-alg 须为 sm4-ecb 或 sm4-cbc', '--kek-alg must be sm4-ecb or sm4-cbc');
    const { blob, kcv } = await withDevice(sdf, (d) => d.generateWrapped(kek, alg));
    const check = kcv.subarray(0, 8).toString('hex').toUpperCase();
    const audit = await auditCardChange(config, 'card.key.generated', { role, index: config.card.keys[role], kek, kekAlg: alg, blobBytes: blob.length, kcv: check });
    const entry = { card: { sdf: { kek, kekAlg: alg, wrappedKeys: { [role]: blob.toString('hex').toUpperCase() } } } };
    if (values.json) console.log(JSON.stringify({ role, kcv: check, blob_bytes: blob.length, config: entry, audit }, null, 2));
    else if (cliLang() === 'zh') console.log(`${role}：已在密码卡内生成新密钥，由 KEK ${kek} 包装（${alg}，${blob.length} 字节）；密钥校验值 ${check}\n写入配置（card.sdf.wrappedKeys.${role}）：\n${JSON.stringify(entry, null, 2)}\n注意：用旧 ${role} 密钥封存的记录无法用新密钥打开\n${auditLine(audit)}`);
    else console.log(`${role}: a new key made in the card, wrapped under KEK ${kek} (${alg}, ${blob.length} bytes); key check value ${check}\nput in the config (card.sdf.wrappedKeys.${role}):\n${JSON.stringify(entry, null, 2)}\nnote: records sealed with the old ${role} key cannot be opened with the new one\n${auditLine(audit)}`);
    return EXIT.OK;
  });

  return defineGroup(
    'card',
    tr('密码卡密钥：show、enc-key、import-envelope、generate、import、wrap', 'crypto card keys: show, enc-key, import-envelope, generate, import, wrap'),
    tr('按标准方式为密码卡灌装密钥（密钥灌装），并查看密码卡和配置的情况。', "Key set-up for the crypto card (密钥灌装) the standard's way, and a look at what the card and the config say."),
  )
    .addCommand(showCmd)
    .addCommand(encKey)
    .addCommand(importEnvelope)
    .addCommand(generate)
    .addCommand(envelope)
    .addCommand(imp)
    .addCommand(wrap);
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
