/**
 * GM/T 0018 return codes and the one typed error every SDF failure becomes. Native failures reach JS
 * as `{code, fn, sdr?}` (see src/addon.cc); `toSdfError` maps them once, here.
 */
export const SDR_BASE = 0x01000000;

export const SDR_NAMES: Record<number, string> = {
  0x0: 'SDR_OK',
  [SDR_BASE + 0x01]: 'SDR_UNKNOWERR',
  [SDR_BASE + 0x02]: 'SDR_NOTSUPPORT',
  [SDR_BASE + 0x03]: 'SDR_COMMFAIL',
  [SDR_BASE + 0x04]: 'SDR_HARDFAIL',
  [SDR_BASE + 0x05]: 'SDR_OPENDEVICE',
  [SDR_BASE + 0x06]: 'SDR_OPENSESSION',
  [SDR_BASE + 0x07]: 'SDR_PARDENY',
  [SDR_BASE + 0x08]: 'SDR_KEYNOTEXIST',
  [SDR_BASE + 0x09]: 'SDR_ALGNOTSUPPORT',
  [SDR_BASE + 0x0a]: 'SDR_ALGMODNOTSUPPORT',
  [SDR_BASE + 0x0b]: 'SDR_PKOPERR',
  [SDR_BASE + 0x0c]: 'SDR_SKOPERR',
  [SDR_BASE + 0x0d]: 'SDR_SIGNERR',
  [SDR_BASE + 0x0e]: 'SDR_VERIFYERR',
  [SDR_BASE + 0x0f]: 'SDR_SYMOPERR',
  [SDR_BASE + 0x10]: 'SDR_STEPERR',
  [SDR_BASE + 0x11]: 'SDR_FILESIZEERR',
  [SDR_BASE + 0x12]: 'SDR_FILENOEXIST',
  [SDR_BASE + 0x13]: 'SDR_FILEOFSERR',
  [SDR_BASE + 0x14]: 'SDR_KEYTYPEERR',
  [SDR_BASE + 0x15]: 'SDR_KEYERR',
  [SDR_BASE + 0x16]: 'SDR_ENCDATAERR',
  [SDR_BASE + 0x17]: 'SDR_RANDERR',
  [SDR_BASE + 0x18]: 'SDR_PRKRERR',
  [SDR_BASE + 0x19]: 'SDR_MACERR',
  [SDR_BASE + 0x1a]: 'SDR_FILEEXSITS',
  [SDR_BASE + 0x1b]: 'SDR_FILEWERR',
  [SDR_BASE + 0x1c]: 'SDR_NOBUFFER',
  [SDR_BASE + 0x1d]: 'SDR_INARGERR',
  [SDR_BASE + 0x1e]: 'SDR_OUTARGERR',
};

export const SDR = Object.fromEntries(Object.entries(SDR_NAMES).map(([code, name]) => [name, Number(code)])) as Record<string, number>;

/** What went wrong, by kind: the card service policy (SdfCard) decides from this, not from codes. */
export type SdfErrorKind =
  | 'load' // library not loadable (missing, corrupt, wrong architecture)
  | 'symbol' // a required SDF_* function is not exported
  | 'device' // device absent, removed, communication or hardware failure, session cannot open
  | 'closed' // the bridge is closed or a session is gone
  | 'busy' // closing with calls in flight
  | 'operation'; // the card refused this operation (key missing, bad argument, algorithm unsupported …)

/** SDR codes after which the device (or its sessions) cannot be trusted: reopen it. */
const DEVICE_CODES = new Set(['SDR_COMMFAIL', 'SDR_HARDFAIL', 'SDR_OPENDEVICE', 'SDR_OPENSESSION', 'SDR_NOBUFFER']);

export class SdfError extends Error {
  override readonly name = 'SdfError';
  constructor(
    /** `SDR_KEYNOTEXIST`, or the bridge's own code (ELOAD, ESYMBOL, ECLOSED, EBUSY, EARG) */
    readonly sdr: string,
    /** the SDR return code; 0 for the bridge's own errors */
    readonly code: number,
    /** the SDF function (or dlopen/dlsym) that failed */
    readonly fn: string,
    readonly kind: SdfErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function sdrName(code: number): string {
  return SDR_NAMES[code >>> 0] ?? (code >>> 0 >= SDR_BASE ? `SDR_BASE+0x${((code >>> 0) - SDR_BASE).toString(16)}` : `0x${(code >>> 0).toString(16)}`);
}

interface NativeErrorShape {
  code?: string;
  fn?: string;
  sdr?: number;
  message?: string;
}

/** Map anything the native side threw to an SdfError (once). */
export function toSdfError(err: unknown, fallbackFn = 'SDF'): SdfError {
  if (err instanceof SdfError) return err;
  const e = (err ?? {}) as NativeErrorShape;
  const fn = e.fn ?? fallbackFn;
  const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0').toUpperCase()}`;
  switch (e.code) {
    case 'ESDR': {
      const code = (e.sdr ?? 0) >>> 0;
      const name = sdrName(code);
      const kind: SdfErrorKind = DEVICE_CODES.has(name) ? 'device' : 'operation';
      return new SdfError(name, code, fn, kind, `${fn} failed: ${name} (${hex(code)})`, { cause: err });
    }
    case 'ELOAD':
      return new SdfError('ELOAD', 0, fn, 'load', e.message ?? 'library not loadable', { cause: err });
    case 'ESYMBOL':
      return new SdfError('ESYMBOL', 0, fn, 'symbol', e.message ?? 'missing SDF function', { cause: err });
    case 'ECLOSED':
      return new SdfError('ECLOSED', 0, fn, 'closed', e.message ?? 'closed', { cause: err });
    case 'EBUSY':
      return new SdfError('EBUSY', 0, fn, 'busy', e.message ?? 'busy', { cause: err });
    default:
      return new SdfError('EARG', 0, fn, 'operation', `${fn}: ${e.message ?? String(err)}`, { cause: err });
  }
}
