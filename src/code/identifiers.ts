/**
 * Identifiers of 附录D: EHCIN (card-system network code, 9 chars) and the 17-char component
 * registration numbers built on it (EHCAPPID for apps; STM for reading terminals; CRP for crypto modules).
 */
export const AUTHORITY_CLASSES = {
  A: '卫生健康委 health commission',
  B: '医院 hospital',
  C: '公共卫生机构 public health',
  D: '基层卫生机构 primary care',
  E: '政府其他部门 other government',
  F: '第三方机构 third party',
  X: '其他 other',
} as const;
export type AuthorityClass = keyof typeof AUTHORITY_CLASSES;

export const COMPONENT_CATEGORIES = {
  APP: 'app',
  GZH: '公众号 official account',
  XCX: '小程序 mini program',
  SHH: '生活号 life account',
  FWH: '服务号 service account',
  QTH: '其他号 other account',
  ZZJ: '自助机 self-service kiosk',
  XXT: '信息亭 information kiosk',
  STM: '识读终端 reading terminal',
  CRP: '密码模块 crypto module',
} as const;
export type ComponentCategory = keyof typeof COMPONENT_CATEGORIES;

const EHCIN = /^(\d{2})(\d{2})([ABCDEFX])(\d{4})$/;
const COMPONENT = /^(\d{4}[ABCDEFX]\d{4})([A-Z]{3})([ABCDEFX])(\d{4})$/;

export interface Ehcin {
  code: string;
  province: string;
  city: string;
  authorityClass: AuthorityClass;
  serial: string;
}

export interface ComponentNumber {
  code: string;
  ehcin: string;
  category: ComponentCategory;
  authorityClass: AuthorityClass;
  serial: string;
}

export function parseEhcin(text: string): Ehcin | null {
  const m = EHCIN.exec(text);
  if (!m) return null;
  return { code: text, province: m[1]!, city: m[2]!, authorityClass: m[3] as AuthorityClass, serial: m[4]! };
}

export const isEhcin = (text: string): boolean => parseEhcin(text) !== null;

export function parseComponentNumber(text: string): ComponentNumber | null {
  const m = COMPONENT.exec(text);
  if (!m || !(m[2]! in COMPONENT_CATEGORIES)) return null;
  return { code: text, ehcin: m[1]!, category: m[2] as ComponentCategory, authorityClass: m[3] as AuthorityClass, serial: m[4]! };
}

export function isStmCode(text: string): boolean {
  return parseComponentNumber(text)?.category === 'STM';
}

/** The STM number of a reading terminal: site EHCIN + `STM` + authority class + 4-digit serial. */
export function makeStmCode(ehcin: string, authorityClass: AuthorityClass, serial: number): string {
  if (!isEhcin(ehcin)) throw new RangeError(`not an EHCIN: ${ehcin}`);
  if (!Number.isInteger(serial) || serial < 0 || serial > 9999) throw new RangeError('STM serial must be 0–9999');
  return `${ehcin}STM${authorityClass}${String(serial).padStart(4, '0')}`;
}
