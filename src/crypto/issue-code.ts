/**
 * Issue a health code with a card's keys — for demo codes, the simulator's population and tests.
 * (A real card system issues codes; the appliance only reads them.)
 */
import type { CryptoCard, Identity } from './card.ts';

export interface IssueOptions {
  identity: Identity;
  /** 17-char component number of the issuing app, e.g. `3502A0001APPA0001` */
  ehcappid: string;
  /** dynamic when given; static (TAG 1, empty VALID) when absent */
  expiresAt?: Date;
  /** extension field; when given the 5-field form is used */
  ext?: string;
}

export async function issueHealthCode(card: Pick<CryptoCard, 'issueEhcid' | 'issueValidity'>, o: IssueOptions): Promise<string> {
  const ehcid = await card.issueEhcid(o.identity);
  const tag = o.expiresAt ? '0' : '1';
  const valid = o.expiresAt ? await card.issueValidity(o.expiresAt) : '';
  return o.ext === undefined ? `${ehcid}:${tag}:${valid}:${o.ehcappid}` : `${ehcid}:${tag}:${valid}:${o.ext}:${o.ehcappid}`;
}
