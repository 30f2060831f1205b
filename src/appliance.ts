/**
 * The composition root as a function: build every component from a validated config, start them in
 * order, stop them in reverse. `src/main.ts` wraps it in a process (signals, exit codes, systemd);
 * tests and benchmarks start real appliances with it.
 */
import { readFileSync } from 'node:fs';
import { makeDirDurablySync } from './platform/durable-write.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Registry } from 'prom-client';
import type { Hono } from 'hono';
import type { ApplianceConfig } from './config/schema.ts';
import { deepFreeze } from './config/load.ts';
import type { CryptoCard } from './crypto/card.ts';
import { openCard } from './crypto/open-card.ts';
import type { EmbeddedSimulator } from '../demo/embed.ts'; // a type only: the module is loaded when the config asks for it
import { createHisApp, type HisExtension } from './his/app.ts';
import { startHisServer, type HisServer } from './his/server.ts';
import { descriptorsNeeded, openFileLimit } from './his/connection-budget.ts';
import { ClockDiscipline } from './ops/clock-discipline.ts';
import { setLogLevel, type Logger } from './platform/log.ts';
import { createRegistry } from './platform/metrics.ts';
import { verifyMetrics } from './verify/metrics.ts';
import { registerOutboxMetrics } from './store/metrics.ts';
import { registerAuditMetrics } from './ops/audit-metrics.ts';
import { opsReport, scannerReports, startOps } from './his/wire.ts';
import { registerStatusMetrics } from './ops/status-metrics.ts';
import { History } from './ops/history.ts';
import { historyExtension } from './his/history-route.ts';
import { EventLoopLoad, ForegroundActivity, desksBusy } from './platform/load-gauge.ts';
import { HttpUpstream } from './protocol/http-upstream.ts';
import { registerLinkMetrics } from './protocol/link-metrics.ts';
import { startProvinceJobs } from './protocol/province-jobs.ts';
import { readTermList } from './ops/stats.ts';
import type { Upstream } from './protocol/upstream.ts';
import { RoutingVerifier, type VerifyObserver } from './verify/verifier.ts';
import type { Verifier } from './verify/types.ts';
import { openOutbox, startReplay, type SqliteOutbox, type Replay } from './store/index.ts';
import { deferredRoute } from './his/deferred-route.ts';
import { startScanning, type Scanning } from './scan/index.ts';
import { WebhookJournal } from './webhook/journal.ts';
import { WebhookDelivery } from './webhook/delivery.ts';
import { scanExtension } from './his/scans-route.ts';
import { StreamTickets, streamTicketExtension, ticketOrKey } from './his/stream-tickets.ts';
import { deskPage } from './his/desk-page.ts';
import { attachScanWebSocket, isScanWebSocketUpgrade } from './his/scan-websocket.ts';
import { EhcError } from './errors.ts';
import type { ApplianceEvents } from './events.ts';
import { EventBus } from './platform/event-bus.ts';
import { reloadConfigFile, type ReloadHooks, type ReloadOutcome } from './config/reload.ts';
import type { ScannerChanges } from '../drivers/manager.ts';
import { replaceKeyList } from './his/auth.ts';
import { HisKeyRing } from './his/admin-keys.ts';
import { adminExtension } from './his/admin-routes.ts';

export const VERSION: string = (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

export interface Appliance {
  config: ApplianceConfig;
  url: string;
  /** the HIS app (routes) */
  app: Hono;
  card: CryptoCard;
  upstream: Upstream;
  verifier: Verifier;
  registry: Registry;
  simulator?: EmbeddedSimulator;
  outbox: SqliteOutbox;
  scanning: Scanning;
  replay: Replay;
  /** the HIS port's server and its connection budget */
  his: HisServer;
  /** the appliance's events (scan, verified, rejected, deferred-answer, outbox-append, component-state) */
  events: EventBus<ApplianceEvents>;
  status(): Promise<Record<string, unknown>>;
  /** HIS keys made by rotation and their grace (src/his/admin-keys.ts) */
  hisKeys: HisKeyRing;
  /**
   * Re-read the config file and apply what applies now (src/config/reload.ts): SIGHUP and
   * POST /v1/admin/reload both come here. `via` goes into the log and the audit trail.
   */
  reload(via: 'SIGHUP' | 'admin'): Promise<ReloadOutcome>;
  stop(): Promise<void>;
}

export async function startAppliance(config: ApplianceConfig, log: Logger): Promise<Appliance> {
  const startedAt = Date.now();
  /** the config as loaded from its file: what a reload compares the file with */
  const loaded = config;
  const stops: Array<() => Promise<void>> = [];
  // stops run once, in reverse start order; a second stop() answers the first one's promise
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const s of [...stops].reverse()) {
        try {
          await s();
        } catch (err) {
          log.warn('error while stopping', { error: err });
        }
      }
    })());
  try {
    makeDirDurablySync(config.stateDir);
    const registry = createRegistry();

    const card = await openCard(config.card, log.child({ component: 'card' }));
    stops.push(() => card.close());

    let simulator: EmbeddedSimulator | undefined;
    if (config.simulator.enabled) {
      // the demo room is reached only through the config: a site install never loads it
      const { startEmbeddedSimulator, upstreamOnSimulator } = await import('../demo/embed.ts');
      simulator = await startEmbeddedSimulator(config, log.child({ component: 'simulator' }));
      stops.push(() => simulator!.close());
      config = deepFreeze({ ...config, upstream: upstreamOnSimulator(config, simulator) });
    }

    const clock = await ClockDiscipline.open({ stateDir: config.stateDir, ...config.verify.clock, logger: log.child({ component: 'clock' }) });
    stops.push(() => clock.close());
    const upstream = new HttpUpstream(config.upstream, { logger: log.child({ component: 'upstream' }), onAnswer: (e) => clock.noteHomeTimestamp(e.timestamp) });
    stops.push(() => upstream.close());

    // a card that is down at start is a degraded state, not a failed start: the outbox checks its keys on first use
    const cardUp = (await card.health()).ok;
    const outbox = await openOutbox(config, card, log, { checkKeysNow: cardUp });
    stops.push(() => outbox.close());
    // one bus for the appliance's events; each listener is owned, and removed when the appliance stops
    const events = new EventBus<ApplianceEvents>((event, owner, error) => log.warn('event listener failed', { event, owner, error }));
    const owners = new Set<string>();
    const listen = <K extends keyof ApplianceEvents>(owner: string, event: K, fn: (e: ApplianceEvents[K]) => void) => {
      if (!owners.has(owner)) stops.push(async () => events.removeOwner(owner));
      owners.add(owner);
      events.on(owner, event, fn);
    };
    const onAppend = (records: number) => events.emit('outbox-append', { records });
    outbox.on('append', onAppend);
    stops.push(async () => void outbox.off('append', onAppend));
    const load = new EventLoopLoad().start();
    stops.push(async () => load.stop());
    const desks = new ForegroundActivity();
    // ops before replay: a deferred answer is audited before it is kept or heard, and replay stops first
    const ops = await startOps({ config, card, outbox, log: log.child({ component: 'ops' }) });
    stops.push(() => ops.close());
    registerAuditMetrics(registry, () => ops.audit.state());
    const replay = startReplay({
      outbox,
      upstream,
      log,
      batch: config.outbox.replayBatch,
      // foreground first: the desks' verifications go before usage records while they keep the loop busy
      busy: desksBusy(load, desks, config.outbox.replayYieldAbove),
      maxYieldMs: config.outbox.replayMaxYieldMs,
      // pipelined and a good citizen toward the home system (src/store/replay.ts)
      window: config.outbox.replayWindow,
      maxPerSecond: config.outbox.replayMaxPerSecond,
      startJitterMs: config.outbox.replayStartJitterMs,
      backoff: { baseMs: config.outbox.replayBackoffBaseMs, maxMs: config.outbox.replayBackoffMaxMs },
      callTimeoutMs: config.upstream.connectTimeoutMs + config.upstream.timeoutMs,
      onDeferredResult: (outVerifyNo, answer) => events.emit('deferred-answer', { outVerifyNo, answer }),
      auditAnswer: ops.auditDeferredAnswer,
    });
    stops.push(() => replay.stop()); // stops before the outbox closes: the record in flight is acked first
    registerOutboxMetrics(registry, replay);
    registerLinkMetrics(registry, upstream);

    // the verifier reports to the bus; metrics, the history and the desks' activity listen. Ops (audit,
    // stats) is the verifier's own observer, not a bus listener: under audit.onFailure = refuse the answer
    // waits for its audit record and is withheld when it cannot be written, which a fire-and-forget bus cannot do
    const metrics = verifyMetrics(registry);
    const observe = (owner: string, o: VerifyObserver) => {
      listen(owner, 'verified', (e) => o.verified?.(e.result, e.request, e.elapsedMs));
      listen(owner, 'rejected', (e) => o.rejected?.(e.error, e.request, e.elapsedMs));
    };
    observe('metrics', metrics);
    listen('desks', 'verified', () => desks.note());
    listen('desks', 'rejected', () => desks.note());
    const observers: VerifyObserver[] = [
      ops.observer,
      {
        verified: (result, request, elapsedMs) => events.emit('verified', { result, request, elapsedMs }),
        rejected: (error, request, elapsedMs) => events.emit('rejected', { error, request, elapsedMs }),
      },
    ];
    const verifier = new RoutingVerifier({
      card,
      upstream,
      outbox,
      settings: { ...config.verify, localEhcins: config.site.localEhcins, termId: config.site.termId },
      clock,
      observers,
    });

    // push to the HIS (webhooks): opened before scanning, so it stops after it
    let webhooks: WebhookDelivery | undefined;
    if (config.webhooks.targets.length > 0) {
      const journal = await WebhookJournal.open({ dir: path.join(config.stateDir, 'webhooks'), card, keys: { storage: config.card.keys.storage, mac: config.card.keys.mac }, maxQueued: config.webhooks.maxQueued });
      webhooks = new WebhookDelivery(journal, config.webhooks.targets, { retryMaxMs: config.webhooks.retryMaxMs, log: log.child({ component: 'webhook' }) }).start();
      stops.push(() => webhooks!.stop());
    }
    const scanning = await startScanning(config, { verifier, log, stateDir: config.stateDir });
    stops.push(() => scanning.stop());
    if (webhooks) scanning.hub.subscribe((ev) => webhooks!.offer(ev));
    // answers to deferred verifications go out on the live stream too
    listen('scan-stream', 'deferred-answer', ({ outVerifyNo: ovn, answer }) => {
      const data = answer instanceof EhcError ? { out_verify_no: ovn, ...answer.toJSON() } : { ...answer, ret_code: '0000', out_verify_no: ovn, decided_by: 'deferred' };
      scanning.hub.publish(answer instanceof EhcError ? 'error' : 'result', 'deferred', undefined, data);
    });
    scanning.hub.subscribe((ev) => {
      if (ev.type === 'scan') events.emit('scan', ev);
      else if (ev.type === 'scanner') events.emit('component-state', { component: 'scanner', id: ev.scannerId, state: String(ev.data.state ?? ''), detail: ev.data.message as string | undefined });
    });
    const lastScanAt = new Map<string, string>();
    listen('status', 'scan', (ev) => lastScanAt.set(ev.scannerId, new Date().toISOString()));
    const scannerInfos = () => scanning.scanners().map((v) => ({ id: v.scannerId, name: v.name, station: v.station, stmCode: v.termId }));

    // the status report, built once everything it reports on exists (src/his/wire.ts)
    const report = opsReport({
      config,
      ops,
      card,
      upstream,
      outbox: () => outbox.stats(),
      scanners: () => scannerReports(scanning.scanners(), lastScanAt),
      scannerInfos,
      version: VERSION,
      startedAt: new Date(startedAt),
    });
    registerStatusMetrics(registry, () => report.status());
    // per-minute history for the status page's charts, persisted across restarts (src/ops/history.ts)
    const history = History.open({
      dir: path.join(config.stateDir, 'history'),
      log: log.child({ component: 'history' }),
      sample: async () => {
        const s = await report.status();
        return {
          upstreamUp: s.upstream.reachable,
          upstreamMs: s.upstream.latencyMs,
          cardUp: s.card.ok,
          outboxDepth: s.outbox.depth,
          delivered: replay.metrics().ehc_edge_replay_delivered_total ?? 0,
          scanners: s.scanners.map((x) => ({ id: x.id, name: x.name, up: x.state === 'ready', configured: x.configured })),
        };
      },
    });
    stops.push(() => history.close()); // runs before ops closes: its last sample reads the status
    observe('history', history.observer());

    // province methods (usage upload, terminal registration): only where the site's card system offers them
    const province = config.upstream.province;
    if (province?.usecarddate || province?.registerTerminals) {
      const jobs = startProvinceJobs({
        settings: province,
        stateDir: config.stateDir,
        termId: config.site.termId,
        outbox,
        log: log.child({ component: 'province' }),
        usageRows: (day) => ops.stats.usecardSceneList({ from: day, to: day, pageSize: 1_000_000 }).rows,
        terminals: () => readTermList(scannerInfos(), config.site),
      });
      stops.push(() => jobs.stop());
      void jobs.runOnce().catch((err: Error) => log.warn('province job failed', { error: err.message }));
    }

    let his: HisServer | undefined;
    const status = async (): Promise<Record<string, unknown>> => {
      const base = await report.status();
      const clockState = clock.state();
      return {
      ...base,
      ok: base.ok && clockState.ok,
      clock: clockState,
      policy: config.verify.policy,
      outbox: { ...outbox.stats(), ...replay.status() }, // sizes from the store, delivery state from the replay
      simulator: simulator ? { url: simulator.url } : undefined,
      webhooks: webhooks ? { targets: webhooks.status() } : undefined,
      his: { connections: his?.budget.counts(), auth_throttle: ops.authThrottle.state(), scan_stream: { subscribers: scanning.hub.subscribers, max_subscribers: config.scan.maxSubscribers } },
      };
    };
    // HIS keys: the config's plus rotated ones, each rotated-away key refused after its grace
    const hisKeys = HisKeyRing.open({
      stateDir: config.stateDir,
      configKeys: config.his.apiKeys,
      apply: (keys) => replaceKeyList(config.his.apiKeys, keys),
      graceSeconds: config.admin.keyGraceSeconds,
    });
    stops.push(async () => hisKeys.close());
    let reloading: Promise<unknown> = Promise.resolve();
    let running = loaded; // what runs now: the base the next reload is compared with
    const reload = (via: 'SIGHUP' | 'admin'): Promise<ReloadOutcome> => {
      const run = reloading.then(async () => {
        // the HIS keys go through the key ring, so rotated keys and their graces survive a reload
        const hooks: ReloadHooks<ScannerChanges> = {
          setLogLevel,
          setHisKeys: (keys) => hisKeys.setConfigKeys(keys),
          setScanners: (list, autoDetect) => scanning.reconfigure(list, autoDetect),
        };
        const r = await reloadConfigFile(running, hooks);
        if (r.ok) running = r.running;
        // an admin gets the refusal in the answer; SIGHUP has nobody to answer but the log
        if (!r.ok) log[via === 'admin' ? 'warn' : 'error']('config reload refused: the running config stays', { via, problem: r.problem });
        else log.info('config reloaded', { via, applied: r.applied, needsRestart: r.needsRestart, ...(r.scanners ? { scanners: r.scanners } : {}), ...(r.needsRestart.length ? { hint: 'systemctl restart ehc-edge applies the keys named in needsRestart' } : {}) });
        ops.audit.record({ kind: 'config', action: 'config.reload', retCode: r.ok ? undefined : '9001', detail: r.ok ? { via, result: 'ok', applied: r.applied, needs_restart: r.needsRestart } : { via, result: 'refused', problem: r.problem } });
        return r;
      });
      reloading = run.catch(() => {});
      return run;
    };
    const tickets = new StreamTickets(config.his.streamTickets);
    const extensions: HisExtension[] = [
      ...report.extensions,
      deferredRoute((ovn) => outbox.lookup(ovn)),
      scanExtension(scanning.routeDeps, (auth, ctx) => ticketOrKey(tickets, auth, ctx.throttle)),
      streamTicketExtension(tickets),
      deskPage(),
      historyExtension(history),
      adminExtension({ guard: ops.adminGuard, audit: ops.audit, reload: () => reload('admin'), outbox, scanners: scanning, keys: hisKeys }),
    ];
    const app = createHisApp({
      verifier,
      apiKeys: config.his.apiKeys,
      viewerKeys: config.his.viewerKeys,
      bodyLimitBytes: config.his.bodyLimitBytes,
      log: log.child({ component: 'his' }),
      registry,
      status,
      ready: async () => {
        const c = await card.health();
        // audit.onFailure = refuse: while the trail cannot be written, identity answers are refused
        const audit = ops.audit.state().writable || config.audit.onFailure === 'continue';
        const down = { ...(c.ok ? {} : { card: c.detail }), ...(audit ? {} : { audit: ops.audit.state().lastError ?? 'cannot write' }) };
        return { ok: c.ok && audit, checks: { card: c.ok, audit }, ...(Object.keys(down).length ? { down } : {}) };
      },
      authThrottle: ops.authThrottle,
      extensions,
      cors: config.his.cors,
    });
    // upgrade: only /v1/scans/ws asking for websocket is an upgrade, where the runtime can say so (Node ≥ 24.9: the package's)
    his = await startHisServer(app, config.his, config.his.websocket ? { upgrade: isScanWebSocketUpgrade } : {});
    stops.push(() => his!.close());
    // the scan stream over WebSocket beside SSE (ticket auth): stops before the server closes;
    // opt-in (his.websocket): on Node 20 (no shouldUpgradeCallback) an 'upgrade' listener takes EVERY Upgrade
    // request, so a plain HTTP client that offers `Upgrade: h2c` (Java's HttpClient does by default) would get
    // its 404 instead of the routes; on the package's runtime (Node 24.22) both are served
    if (config.his.websocket) {
      const stopScanSocket = attachScanWebSocket(his.server as unknown as Parameters<typeof attachScanWebSocket>[0], { hub: scanning.hub, tickets, maxSubscribers: config.scan.maxSubscribers });
      stops.push(async () => stopScanSocket());
    }
    const fdLimit = openFileLimit(() => readFileSync('/proc/self/limits', 'utf8'));
    const fdNeeded = descriptorsNeeded(config.his.connections);
    if (fdLimit !== undefined && fdLimit < fdNeeded) log.warn('open-file limit below what the HIS connection budget needs: raise LimitNOFILE or lower his.connections', { limit: fdLimit, needed: fdNeeded });
    log.info('HIS port listening', { url: his.url });

    return { config, url: his.url, his, app, card, upstream, verifier, registry, simulator, outbox, scanning, replay, events, status, hisKeys, reload, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
