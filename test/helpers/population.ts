/**
 * A made-up test population: names, 18-digit resident ID numbers (valid GB 11643 check digit) and
 * mobile numbers. Deterministic from a seed so failures reproduce. None of these are real people.
 */
export interface Person {
  name: string;
  idType: '01';
  idNo: string;
  phone: string;
}

const SURNAMES = ['王', '李', '张', '刘', '陈', '杨', '黄', '赵', '吴', '周', '徐', '孙', '马', '朱', '胡', '郭', '何', '林', '罗', '高'];
const GIVEN = ['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳', '杰', '娟', '涛', '明', '超', '秀英', '霞', '平', '刚', '桂英', '建华', '晓东'];
const AREAS = ['350203', '350206', '110101', '310104', '440305', '510107'];

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

export function idCheckDigit(first17: string): string {
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * w[i]!;
  return '10X98765432'[sum % 11]!;
}

export function population(count: number, seed = 7): Person[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  const seen = new Set<string>();
  const people: Person[] = [];
  while (people.length < count) {
    const year = 1940 + Math.floor(r() * 80);
    const body = `${pick(AREAS)}${year}${pad(1 + Math.floor(r() * 12), 2)}${pad(1 + Math.floor(r() * 28), 2)}${pad(Math.floor(r() * 1000), 3)}`;
    const idNo = body + idCheckDigit(body);
    if (seen.has(idNo)) continue;
    seen.add(idNo);
    const name = pick(SURNAMES) + pick(GIVEN) + (r() < 0.5 ? pick(GIVEN) : '');
    const phone = `1${pick(['3', '5', '7', '8', '9'])}${pad(Math.floor(r() * 1e9), 9)}`;
    people.push({ name, idType: '01', idNo, phone });
  }
  return people;
}

/** Every clear value of the population found in `text`, as `kind:value` strings. */
export function findClearPii(text: string, people: readonly Person[]): string[] {
  const found: string[] = [];
  for (const p of people) {
    if (text.includes(p.idNo)) found.push(`id:${p.idNo}`);
    if (text.includes(p.phone)) found.push(`phone:${p.phone}`);
    // names of 2+ characters: the clear name must not appear (masked names have * as 2nd char)
    if (Array.from(p.name).length >= 2 && text.includes(p.name)) found.push(`name:${p.name}`);
  }
  return found;
}
