/**
 * The appliance's small state store (registered terminal numbers and the like): one JSON document in
 * `<stateDir>/state.json`, held by lowdb.
 *
 * lowdb's own JSONFile writes through steno, which renames a temp file into place but never fsyncs:
 * after a power cut the rename can survive while the data does not (an empty or truncated file). The
 * adapter below keeps lowdb's model and makes each write durable through the one durable-write helper
 * (src/platform/durable-write.ts: temp → fsync → rename → fsync(folder), mode 0600). Writes are serialised. The state is small (a few KB), so a full rewrite
 * per change is cheap.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { makeDirDurably, replaceFileDurably } from '../platform/durable-write.ts';

export class FsyncJSONFile<T> implements Adapter<T> {
  readonly #file: string;
  #queue: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.#file = file;
  }

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return JSON.parse(text) as T;
  }

  write(data: T): Promise<void> {
    const text = JSON.stringify(data, null, 2) + '\n';
    const run = this.#queue.then(() => this.#writeDurably(text));
    this.#queue = run.catch(() => {});
    return run;
  }

  #writeDurably(text: string): Promise<void> {
    return replaceFileDurably(this.#file, text);
  }
}

export interface TerminalRecord {
  /** 识读终端 registration number, 17 chars */
  stm: string;
  allocatedAt: string;
}

export interface ApplianceState {
  version: 1;
  /** scannerId → its registered reading-terminal number; allocated once, never reused */
  terminals: Record<string, TerminalRecord>;
  /** the live scan stream's id reservation (src/scan/hub.ts): ids never go back across restarts */
  stream?: { reservedUpTo: number };
  /** scannerId → the name (and station) an admin registered or renamed it to (src/his/admin-routes.ts); wins over the config's */
  scannerNames?: Record<string, { name: string; station?: string; at: string }>;
}

export type StateStore = Low<ApplianceState>;

export async function openStateStore(stateDir: string): Promise<StateStore> {
  await makeDirDurably(stateDir);
  const db = new Low<ApplianceState>(new FsyncJSONFile<ApplianceState>(path.join(stateDir, 'state.json')), { version: 1, terminals: {} });
  await db.read();
  db.data.terminals ??= {};
  return db;
}
