/**
 * A small deterministic population for the simulator and the demo tools: the same people, ID numbers
 * (with valid GB 11643 check digits), phones and birthdays on every run. Person 0 is the patient of
 * the standard's own worked example (材料三 附录A).
 */
export interface Person {
  idType: string; // 01 resident ID card
  idNo: string;
  name: string;
  sex: '1' | '2'; // GB/T 2261.1: 1 male, 2 female
  birthday: string; // yyyyMMdd
  phone: string;
  birthPlace: string;
}

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';

/** GB 11643-1999 check character of the first 17 digits. */
export function idCheckDigit(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * WEIGHTS[i]!;
  return CHECK[sum % 11]!;
}

export function isValidIdNo(idNo: string): boolean {
  return /^\d{17}[\dX]$/.test(idNo) && idCheckDigit(idNo.slice(0, 17)) === idNo[17];
}

/** mulberry32: a tiny seeded PRNG, so the population never changes between runs. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SURNAMES = ['林', '陈', '黄', '张', '李', '王', '吴', '刘', '蔡', '杨', '郑', '许', '谢', '洪', '郭', '邱'];
const GIVEN_M = ['志强', '建华', '文博', '国平', '思远', '明辉', '伟', '俊杰', '海涛', '振宇'];
const GIVEN_F = ['丽娜', '秀英', '晓燕', '雅琴', '美玲', '婷', '慧敏', '静怡', '春梅', '佳欣'];
const REGIONS: Array<[string, string]> = [
  ['350203', '福建省厦门市思明区'],
  ['350206', '福建省厦门市湖里区'],
  ['350102', '福建省福州市鼓楼区'],
  ['350322', '福建省莆田市仙游县'],
  ['350583', '福建省南安市'],
  ['110105', '北京市朝阳区'],
];
const PHONE_PREFIX = ['135', '136', '138', '139', '150', '158', '186', '189'];

export function makePopulation(size = 24, seed = 20181227): Person[] {
  const people: Person[] = [
    { idType: '01', idNo: '350322199008207715', name: '陈俊海', sex: '1', birthday: '19900820', phone: '13646032065', birthPlace: '' },
  ];
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const seen = new Set(people.map((p) => p.idNo));
  while (people.length < size) {
    const [region, place] = pick(REGIONS);
    const year = 1940 + Math.floor(r() * 80);
    const month = 1 + Math.floor(r() * 12);
    const day = 1 + Math.floor(r() * 28);
    const birthday = `${year}${String(month).padStart(2, '0')}${String(day).padStart(2, '0')}`;
    const male = r() < 0.5;
    let seq = Math.floor(r() * 500) * 2; // even sequence digit → female
    if (male) seq += 1; // odd → male (GB 11643 §6.2.3)
    const first17 = region + birthday + String(seq).padStart(3, '0');
    const idNo = first17 + idCheckDigit(first17);
    if (seen.has(idNo)) continue;
    seen.add(idNo);
    const name = pick(SURNAMES) + pick(male ? GIVEN_M : GIVEN_F);
    const phone = pick(PHONE_PREFIX) + String(Math.floor(r() * 1e8)).padStart(8, '0');
    people.push({ idType: '01', idNo, name, sex: male ? '1' : '2', birthday, phone, birthPlace: place });
  }
  return people;
}
