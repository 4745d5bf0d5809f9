import { callHook, errorMessage, silentLogger, sleep, systemClock, type Clock, type Logger, type Slot, type Snapshot } from "@hsdo/core";
import type { PollResult } from "@hsdo/store";
import { loadSnapshot, saveSnapshot, type SnapshotOrigin } from "./cache.ts";
import { Reconciler, type ReconcileResult } from "./reconcile.ts";
import { writeServerStateFile } from "./server-state-file.ts";

const lines = Reconciler.lines;

/** What the agent needs of the store: the reader's cheap poll, bounded by a deadline (docs/ARCHITECTURE.md, "Reading"). */
export interface SnapshotPoller {
  readonly pool: string;
  poll(lastGeneration: number | undefined, signal: AbortSignal): Promise<PollResult>;
}

export interface ClientAgentOptions {
  pollers: readonly SnapshotPoller[];
  reconciler: Pick<Reconciler, "tick">;
  /** Directory of the last-good-snapshot files; "" for none. */
  cacheDir: string;
  /** Where the pools are read from: a cached snapshot is restored only into the same endpoint, region and table. */
  origin: Omit<SnapshotOrigin, "pool">;
  /** HAProxy's server-state file, rewritten after every apply; "" for none. */
  serverStateFile: string;
  maxSnapshotAgeMs: number;
  intervalMs: number;
  /**
   * Identity of the HAProxy process behind the socket (its pid), read
   * between ticks: a new one (reload, restart) is reconciled at once.
   * Undefined when it cannot be read.
   */
  haproxyProcess?: () => Promise<string | undefined>;
  /** How often haproxyProcess is asked between ticks (default: half the interval, at most 500 ms). */
  watchMs?: number;
  clock?: Clock;
  log?: Logger;
  onTick?: (result: ClientTickResult) => void;
  /** Source of the ticks' jitter (default Math.random): see tickDelay. */
  random?: () => number;
  /** Called when a new HAProxy process is seen behind the socket. */
  onNewProcess?: (pid: string) => void;
  /**
   * Start-up check of each pool's first snapshot (from the cache or the
   * first read), before anything is applied: what it throws (a
   * PreflightError for a configuration that cannot drive these slots) ends
   * the run. Later snapshots are never checked this way: at run time a
   * client keeps HAProxy's state instead of exiting.
   */
  checkFirstSnapshot?: (snapshot: Snapshot) => void;
}

export interface PoolStatus {
  pool: string;
  generation?: number;
  /** Where the snapshot in use came from. */
  from?: "table" | "cache";
  /** Monotonic time of the last successful read of the table. */
  lastReadAt?: number;
  lastError?: string;
  invalid: number;
}

export interface ClientTickResult {
  pools: PoolStatus[];
  reconcile?: ReconcileResult;
  /** The Runtime API could not be used this tick. */
  runtimeError?: string;
  durationMs: number;
  /** The slots of the snapshots this tick reconciled from, every pool (what HAProxy is driven to). */
  slots: Slot[];
}

export interface Readiness {
  ready: boolean;
  /** Why the node is not ready (empty when it is). */
  reasons: string[];
  /** What deserves a look but does not make a serving node unready: a stale table read, what could not be reconciled. */
  warnings: string[];
}

/**
 * The client's loop around the reconciler: poll each pool's head, read the
 * pool only when it moved, keep the last good snapshot (in memory and on
 * disk), and reconcile HAProxy against it every tick.
 *
 * Fail static (docs/ARCHITECTURE.md, "Failure modes"): reads are bounded by
 * a deadline of one interval, and every tick reconciles from the last good
 * snapshot whether or not they answered; at start-up the cached snapshot is
 * applied before the table is asked anything. After every apply the servers'
 * state goes to HAProxy's server-state file, so a reload or restart of
 * HAProxy starts where the last apply left it; a new HAProxy process is
 * noticed between ticks and reconciled at once.
 */
export class ClientAgent {
  private readonly o: ClientAgentOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly status = new Map<string, PoolStatus>();
  private cacheLoaded = false;
  private readonly startedAt: number;
  /** A snapshot was applied and HAProxy matched it, at least once. */
  private applied = false;
  private lastResult: ClientTickResult | undefined;
  /** The state file must be written at the next reconcile (first apply, new HAProxy process, failed write). */
  private stateFileDue: boolean;
  private haproxyPid: string | undefined;
  /** Until the first tick is over: first snapshots are checked (checkFirstSnapshot). */
  private startingUp = true;
  private readonly checked = new Set<string>();
  lastRuntimeError: string | undefined;

  constructor(options: ClientAgentOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    for (const p of options.pollers) this.status.set(p.pool, { pool: p.pool, invalid: 0 });
    this.startedAt = this.clock.monotonic();
    this.stateFileDue = options.serverStateFile !== "";
  }

  private origin(pool: string): SnapshotOrigin {
    return { ...this.o.origin, pool };
  }

  /** Cached snapshots stand in until the table answers (start-up during an outage). */
  private async loadCache(): Promise<void> {
    this.cacheLoaded = true;
    if (!this.o.cacheDir) return;
    for (const p of this.o.pollers) {
      // Whatever goes wrong with the cache means "no cache", never a failed tick.
      const loaded = await loadSnapshot(this.o.cacheDir, this.origin(p.pool)).catch((err: unknown) => ({
        status: "corrupt" as const,
        error: errorMessage(err),
      }));
      if (loaded.status === "loaded") {
        const snap = loaded.snapshot;
        this.snapshots.set(p.pool, snap);
        Object.assign(this.status.get(p.pool)!, { generation: snap.head.generation, from: "cache", invalid: snap.invalid.length });
        this.log.info("loaded the last good snapshot from the cache", { pool: p.pool, generation: snap.head.generation });
        for (const bad of snap.invalid) this.log.warn("invalid slot item kept in maint", { pool: p.pool, slot: bad.slot, problems: bad.problems });
      } else if (loaded.status === "corrupt" || loaded.status === "foreign") {
        this.log.warn("ignoring the snapshot cache file", { pool: p.pool, reason: loaded.error });
      }
    }
  }

  /**
   * Start-up: the cached snapshots, applied before the table is asked
   * anything, so a client restarted during a DynamoDB outage (or with a
   * black-holed endpoint) restores HAProxy at once.
   */
  async restore(): Promise<ClientTickResult | undefined> {
    if (!this.cacheLoaded) await this.loadCache();
    if (this.snapshots.size === 0) return undefined;
    this.checkFirstSnapshots();
    const started = this.clock.monotonic();
    const result = await this.reconcile(started);
    callHook(this.log, "onTick", () => this.o.onTick?.(result));
    return result;
  }

  /** One tick: read every pool (bounded by one interval), then reconcile from the last good snapshots. */
  async tick(): Promise<ClientTickResult> {
    const started = this.clock.monotonic();
    if (!this.cacheLoaded) await this.loadCache();
    // No read holds a tick past its interval: a black-holed endpoint costs one interval, never more.
    const deadline = AbortSignal.timeout(Math.max(200, this.o.intervalMs));
    // Pools are read side by side: one slow or black-holed read must not delay the others.
    await Promise.all(this.o.pollers.map((p) => this.read(p, deadline)));
    if (this.startingUp) {
      this.startingUp = false;
      this.checkFirstSnapshots();
    }
    const result = await this.reconcile(started);
    callHook(this.log, "onTick", () => this.o.onTick?.(result));
    return result;
  }

  private checkFirstSnapshots(): void {
    for (const [pool, snap] of this.snapshots) {
      if (this.checked.has(pool)) continue;
      this.checked.add(pool);
      this.o.checkFirstSnapshot?.(snap);
    }
  }

  private async reconcile(started: number): Promise<ClientTickResult> {
    const snapshots = [...this.snapshots.values()];
    const result: ClientTickResult = { pools: [...this.status.values()].map((s) => ({ ...s })), durationMs: 0, slots: snapshots.flatMap((s) => s.slots) };
    if (snapshots.length > 0) {
      try {
        const dumpState = this.stateFileDue;
        result.reconcile = await this.o.reconciler.tick(snapshots, { dumpState });
        this.lastRuntimeError = undefined;
        this.applied ||= result.reconcile.failed.length === 0;
        this.logReconcile(result.reconcile);
        await this.writeStateFile(result.reconcile);
      } catch (err) {
        result.runtimeError = errorMessage(err);
        this.lastRuntimeError = result.runtimeError;
        this.log.error("HAProxy Runtime API unusable this tick", { error: result.runtimeError });
      }
    }
    result.durationMs = this.clock.monotonic() - started;
    this.lastResult = result;
    return result;
  }

  private async writeStateFile(r: ReconcileResult): Promise<void> {
    const file = this.o.serverStateFile;
    if (!file || r.dryRun || r.serverState === undefined) return;
    if (r.serverState === "") {
      this.log.warn("HAProxy printed no server state to save; the server-state file is left as it was", { file });
      return;
    }
    try {
      await writeServerStateFile(file, r.serverState);
      if (this.stateFileDue) this.log.info("HAProxy server-state file written", { file });
      this.stateFileDue = false;
    } catch (err) {
      this.stateFileDue = true;
      this.log.warn("could not write HAProxy's server-state file", { file, error: errorMessage(err) });
    }
  }

  private async read(p: SnapshotPoller, signal: AbortSignal): Promise<void> {
    const status = this.status.get(p.pool)!;
    const current = this.snapshots.get(p.pool);
    try {
      // A cached snapshot is never taken as up to date: read the pool once from the table.
      const known = status.from === "table" ? current?.head.generation : undefined;
      const polled = await p.poll(known, signal);
      status.lastReadAt = this.clock.monotonic();
      if (status.lastError?.startsWith("table unreadable")) this.log.info("table readable again", { pool: p.pool });
      status.lastError = undefined;
      if (!polled.changed) {
        // A head of generation 0 is a leader that took over but has not published yet.
        if (!current && (polled.head?.generation ?? 0) === 0) status.lastError = `no snapshot: no server has published pool ${p.pool} yet`;
        return;
      }
      const snap = polled.snapshot;
      this.snapshots.set(p.pool, snap);
      status.generation = snap.head.generation;
      status.from = "table";
      status.invalid = snap.invalid.length;
      for (const bad of snap.invalid) this.log.warn("invalid slot item kept in maint", { pool: p.pool, slot: bad.slot, problems: bad.problems });
      this.log.info("new snapshot", { pool: p.pool, generation: snap.head.generation, leader: snap.head.leader });
      if (this.o.cacheDir) {
        await saveSnapshot(this.o.cacheDir, this.origin(p.pool), snap).catch((err: unknown) =>
          this.log.warn("could not write the snapshot cache (fail-static restarts need it)", { dir: this.o.cacheDir, error: errorMessage(err) }),
        );
      }
    } catch (err) {
      const was = status.lastError;
      const reason = signal.aborted ? `no answer within ${Math.max(200, this.o.intervalMs)} ms` : errorMessage(err);
      status.lastError = `table unreadable: ${reason}`;
      if (was !== status.lastError) this.log.warn("cannot read the table, HAProxy keeps its last state", { pool: p.pool, error: reason });
    }
  }

  private logReconcile(r: ReconcileResult): void {
    if (this.log.debugEnabled) for (const line of lines(r.sent)) this.log.debug("sent", { command: line });
    if (r.sent.length > 0) this.log.info("applied changes to HAProxy", { commands: r.sent.length, drift: r.drift.length });
    for (const f of r.failed) {
      if (f.unrecognised) this.log.error("HAProxy answered a command in words hsdo does not know: not counted as done", { command: f.line, answer: f.text });
      else this.log.error("HAProxy refused a command", { command: f.line, answer: f.text });
    }
    for (const p of r.problems) this.log.warn("cannot reconcile", { problem: p });
  }

  /**
   * /readyz: HAProxy holds a good state, a snapshot (from the table or the
   * cache) applied and HAProxy matching it at the last tick. A table that
   * cannot be read never makes a serving node unready: during a DynamoDB
   * outage every node would turn unready at once, and a load balancer would
   * drop the whole fleet. Staleness is a warning here, a metric
   * (hsdo_snapshot_age_seconds) and an alert; `strict` also counts it.
   */
  readiness(options: { strict?: boolean } = {}): Readiness {
    const reasons: string[] = [];
    const warnings: string[] = [];
    const now = this.clock.monotonic();
    const last = this.lastResult;
    if (!this.applied) reasons.push("client: no snapshot applied to HAProxy yet");
    if (this.lastRuntimeError) reasons.push(`client: HAProxy Runtime API: ${this.lastRuntimeError}`);
    else if (this.applied && last?.reconcile && last.reconcile.failed.length > 0) {
      reasons.push(`client: HAProxy refused ${last.reconcile.failed.length} command(s) at the last tick: ${last.reconcile.failed[0]?.text ?? ""}`);
    }
    for (const p of last?.reconcile?.problems ?? []) warnings.push(`client: ${p}`);
    for (const s of this.status.values()) {
      const stale: string[] = [];
      if (s.lastReadAt === undefined) stale.push(`client: pool ${s.pool}: table not read yet${s.lastError ? `: ${s.lastError}` : ""}`);
      else if (now - s.lastReadAt > this.o.maxSnapshotAgeMs) {
        stale.push(
          `client: pool ${s.pool}: table last read ${Math.round((now - s.lastReadAt) / 1000)}s ago (limit ${this.o.maxSnapshotAgeMs / 1000}s)` +
            `${s.lastError ? `: ${s.lastError}` : ""}; HAProxy keeps the ${s.from === "cache" ? "cached" : "last"} snapshot`,
        );
      } else if (s.lastError) warnings.push(`client: pool ${s.pool}: ${s.lastError}`);
      if (!this.snapshots.has(s.pool) && s.lastError && s.lastReadAt !== undefined) reasons.push(`client: pool ${s.pool}: ${s.lastError}`);
      if (options.strict) reasons.push(...stale);
      else warnings.push(...stale);
    }
    return { ready: reasons.length === 0, reasons, warnings };
  }

  /**
   * Seconds since each pool was last read from the table (for the snapshot
   * age metric); before the first read, since the agent started, so an age
   * alert fires for a client that never reached the table.
   */
  ages(): { pool: string; seconds: number }[] {
    const now = this.clock.monotonic();
    return [...this.status.values()].map((s) => ({ pool: s.pool, seconds: (now - (s.lastReadAt ?? this.startedAt)) / 1000 }));
  }

  async run(signal: AbortSignal): Promise<void> {
    await this.restore();
    let first = true;
    while (!signal.aborted) {
      await this.tick();
      await this.waitForNextTick(signal, tickDelay(this.o.intervalMs, this.random(), first));
      first = false;
    }
  }

  private random(): number {
    return (this.o.random ?? Math.random)();
  }

  /**
   * Sleeps one interval, asking HAProxy for its process identity every
   * watchMs: a reload or restart ends the wait at once (and the state file
   * is rewritten for the new process).
   */
  private async waitForNextTick(signal: AbortSignal, delayMs: number): Promise<void> {
    const until = this.clock.monotonic() + delayMs;
    const watch = this.o.haproxyProcess;
    const step = this.o.watchMs ?? Math.min(500, Math.max(50, this.o.intervalMs / 2));
    while (!signal.aborted) {
      const left = until - this.clock.monotonic();
      if (left <= 0) return;
      await sleep(watch ? Math.min(step, left) : left, signal);
      if (!watch || signal.aborted) continue;
      const pid = await watch().catch(() => undefined);
      if (pid === undefined) continue;
      const was = this.haproxyPid;
      this.haproxyPid = pid;
      if (was !== undefined && was !== pid) {
        this.log.info("new HAProxy process: reconciling now", { was, now: pid });
        callHook(this.log, "onNewProcess", () => this.o.onNewProcess?.(pid));
        if (this.o.serverStateFile) this.stateFileDue = true;
        return;
      }
    }
  }
}

/**
 * The wait before the next tick (docs/ARCHITECTURE.md, "Reading"): the first
 * one a random part of an interval, so that clients started together (a
 * fleet boot, a deployment) do not tick in the same instant; then an
 * interval give or take 10%, so that they stay spread. After a change every
 * client reads the pool at its own point of the interval, not the whole
 * fleet in the same 100 ms on one partition.
 */
export function tickDelay(intervalMs: number, random: number, first: boolean): number {
  const r = Math.min(1, Math.max(0, random));
  return first ? intervalMs * r : intervalMs * (0.9 + 0.2 * r);
}
