/**
 * The outbox's key check: a sealed check value in `meta`, written at the first use, so that a crypto
 * card with other storage/MAC keys (a wrong key index, a replaced card) fails loudly with 8008 instead
 * of turning every stored record into an integrity failure.
 */
import type Database from 'better-sqlite3';
import { EhcError } from '../errors.ts';
import type { RecordSealer } from './seal.ts';

const CHECK = Buffer.from('outbox key check', 'utf8');

export async function checkOutboxKeys(db: Database.Database, sealer: RecordSealer, file: string): Promise<void> {
  const row = db.prepare("SELECT v FROM meta WHERE k = 'keycheck'").pluck().get() as Buffer | undefined;
  if (!row) {
    const sealed = await sealer.seal(CHECK, CHECK);
    db.prepare("INSERT OR IGNORE INTO meta (k, v) VALUES ('keycheck', ?)").run(Buffer.concat([sealed.iv, sealed.mac, sealed.body]));
    return;
  }
  try {
    const plain = await sealer.open({ iv: row.subarray(0, 16), mac: row.subarray(16, 48), body: row.subarray(48) }, CHECK);
    if (!plain.equals(CHECK)) throw new Error('check value differs');
  } catch (err) {
    throw new EhcError('8008', `outbox: the crypto card's storage/MAC keys are not the ones ${file} was written with (${(err as Error).message})`, { cause: err });
  }
}
