/**
 * Fresh process for the RSS figure: opens the outbox given on the command line (backlog already in
 * it), peeks a replay batch, appends 100 records, and prints {rssMb, depth} as its last line.
 */
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { nodeCard } from '../test/fixtures/node-card.ts';
import { entry } from '../test/fixtures/entries.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: outbox-rss-child.ts <outbox.sqlite>');
const ob = SqliteOutbox.open({
  file,
  card: nodeCard(),
  keys: { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac },
  limits: { maxRecords: 10_000_000, maxBytes: 8 * 2 ** 30, maxAgeHours: 720 },
});
await ob.peek(64);
await Promise.all(Array.from({ length: 100 }, (_, i) => ob.append(entry(i, 'usage', 'RSS-'))));
const depth = ob.stats().depth;
for (let i = 0; i < 10; i++) await ob.peek(64);
const rssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
await ob.close();
console.log(JSON.stringify({ rssMb, depth }));
