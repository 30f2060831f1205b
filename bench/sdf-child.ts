/**
 * A measuring prototype of running the vendor library in a child process (bench/sdf.ts; imported by bench/run.ts it does nothing): the child
 * opens the card and answers card calls sent over Node's IPC channel, so a library that crashes takes
 * down only the child. Not wired into the appliance — see the README for the figures and the decision.
 *
 * Messages: parent → {init: {sdf, keys}} then {id, op: 'decryptEhcid' | 'sm2Sign', arg}; child → {id, ok, value} | {id, ok: false, error}.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Request {
  id: number;
  op: 'decryptEhcid' | 'sm2Sign';
  arg: string;
}

async function child(): Promise<void> {
  const { SdfCard } = await import('../src/crypto/sdf-card.ts');
  const { ProfiledCard } = await import('../src/crypto/profiled-card.ts');
  const { createLogger } = await import('../src/platform/log.ts');
  let card: InstanceType<typeof ProfiledCard> | undefined;
  process.on('message', async (m: { init?: { sdf: Parameters<typeof SdfCard.open>[0]; keys: Parameters<typeof SdfCard.open>[1] } } & Partial<Request>) => {
    if (m.init) {
      card = new ProfiledCard(await SdfCard.open(m.init.sdf, m.init.keys, createLogger({ level: 'error' })), m.init.keys);
      const h = await card.health();
      process.send!({ ready: h.ok, detail: h.detail });
      return;
    }
    try {
      const value = m.op === 'decryptEhcid' ? await card!.decryptEhcid(m.arg!) : (await card!.sm2Sign(card!.keys.sign, Buffer.from(m.arg!))).toString('hex');
      process.send!({ id: m.id, ok: true, value });
    } catch (err) {
      process.send!({ id: m.id, ok: false, error: (err as Error).message });
    }
  });
  process.on('disconnect', () => void card?.close().finally(() => process.exit(0)));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.send) void child();
