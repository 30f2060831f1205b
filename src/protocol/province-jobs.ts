/**
 * The province methods on a schedule, each behind config (`upstream.province`): once a day, after
 * `usecarddateHour` (China Standard Time), yesterday's usage rows are queued as usecarddate batches;
 * every reading terminal with an STM number not yet registered gets its registration message queued.
 * What was queued is remembered in `<stateDir>/province.json` (durable write) so a restart does not
 * queue it again — and when a crash lands between the queueing and that note, the repeat carries the
 * same serials and the card system answers 3002, which the replay counts as delivered.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { replaceFileDurably } from '../platform/durable-write.ts';
import { formatCst } from '../platform/time.ts';
import type { Logger } from '../platform/log.ts';
import { queueTerminalRegistrations, queueUsecarddate, type ProvinceQueue, type TerminalRow, type UsageRow } from './province.ts';

export interface ProvinceSettings {
  usecarddate: boolean;
  /** hour of the day (CST) from which yesterday's usage is uploaded */
  usecarddateHour: number;
  registerTerminals: boolean;
}

export interface ProvinceJobsOptions {
  settings: ProvinceSettings;
  stateDir: string;
  termId: string;
  outbox: ProvinceQueue;
  /** the usage rows of one day (yyyyMMdd CST) */
  usageRows: (day: string) => UsageRow[];
  /** reading terminals with their STM numbers */
  terminals: () => TerminalRow[];
  log: Logger;
  now?: () => Date;
  /** how often to look (default 5 min) */
  intervalMs?: number;
}

interface ProvinceState {
  /** last day whose usage was queued (yyyyMMdd) */
  usecarddateDay?: string;
  /** term_record → when its registration was queued */
  registered: Record<string, string>;
}

const STM = /^[0-9]{4}[ABCDEFX][0-9]{4}STM[ABCDEFX][0-9]{4}$/;
const cstDay = (t: Date) => formatCst(t).slice(0, 8);
const cstHour = (t: Date) => Number(formatCst(t).slice(8, 10));

export interface ProvinceJobs {
  /** run both jobs once now (also what the timer does); resolves with what was queued */
  runOnce(): Promise<{ usecarddate: string[]; registrations: string[] }>;
  stop(): Promise<void>;
}

export function startProvinceJobs(o: ProvinceJobsOptions): ProvinceJobs {
  const file = path.join(o.stateDir, 'province.json');
  const now = o.now ?? (() => new Date());
  let state: ProvinceState = { registered: {} };
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<ProvinceState>;
    state = { ...saved, registered: saved.registered ?? {} };
  } catch {
    // first start (or an unreadable note): at worst a repeat, answered 3002
  }
  let running: Promise<{ usecarddate: string[]; registrations: string[] }> | undefined;
  const work = async () => {
    const out = { usecarddate: [] as string[], registrations: [] as string[] };
    const t = now();
    const yesterday = cstDay(new Date(t.getTime() - 86_400_000));
    let changed = false;
    if (o.settings.usecarddate && cstHour(t) >= o.settings.usecarddateHour && (state.usecarddateDay ?? '') < yesterday) {
      out.usecarddate = await queueUsecarddate(o.outbox, yesterday, o.termId, o.usageRows(yesterday), t);
      state.usecarddateDay = yesterday;
      changed = true;
      o.log.info('usage upload queued', { day: yesterday, batches: out.usecarddate.length });
    }
    if (o.settings.registerTerminals) {
      const fresh = o.terminals().filter((r) => STM.test(r.term_record) && !state.registered[r.term_record]);
      if (fresh.length) {
        out.registrations = await queueTerminalRegistrations(o.outbox, fresh, o.termId, t);
        for (const r of fresh) state.registered[r.term_record] = t.toISOString();
        changed = true;
        o.log.info('terminal registrations queued', { terminals: fresh.map((r) => r.term_record) });
      }
    }
    if (changed) await replaceFileDurably(file, JSON.stringify(state, null, 2) + '\n');
    return out;
  };
  const runOnce = () => {
    running ??= work().finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void runOnce().catch((err: Error) => o.log.warn('province job failed', { error: err.message })), o.intervalMs ?? 300_000);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
