import { errorMessage, silentLogger, sleep, systemClock, type Clock, type Logger, type Snapshot } from "@hsdo/core";
import type { PollResult } from "@hsdo/store";
import { loadSnapshot, saveSnapshot } from "./cache.ts";
import { Reconciler, type ReconcileResult } from "./reconcile.ts";

const lines = Reconciler.lines;

/** What the agent needs of the store: the reader's cheap poll (STYLE.md 14). */
export interface SnapshotPoller {
  readonly pool: string;
  poll(lastGeneration?: number): Promise<PollResult>;
}

export interface ClientAgentOptions {
  pollers: readonly SnapshotPoller[];
  reconciler: Pick<Reconciler, "tick">;
  /** Directory of the last-good-snapshot files; "" for none. */
  cacheDir: string;
  maxSnapshotAgeMs: number;
  intervalMs: number;
  clock?: Clock;
  log?: Logger;
  onTick?: (result: ClientTickResult) => void;
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
}

/**
 * The client's loop around the reconciler: poll each pool's head, read the
 * pool only when it moved, keep the last good snapshot (in memory and on
 * disk), and reconcile HAProxy against it every tick. Fail static: when the
 * table cannot be read, HAProxy keeps what it has, and a client restarted
 * during an outage starts from its cached snapshot.
 */
export class ClientAgent {
  private readonly o: ClientAgentOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly status = new Map<string, PoolStatus>();
  /** Pools whose last read of the table failed: a readiness problem only once the last good read is too old. */
  private readonly failingReads = new Set<string>();
  private cacheLoaded = false;
  private readonly startedAt: number;
  private applied = false;
  lastRuntimeError: string | undefined;

  constructor(options: ClientAgentOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    for (const p of options.pollers) this.status.set(p.pool, { pool: p.pool, invalid: 0 });
    this.startedAt = this.clock.monotonic();
  }

  /** Cached snapshots stand in until the table answers (start-up during an outage). */
  private async loadCache(): Promise<void> {
    this.cacheLoaded = true;
    if (!this.o.cacheDir) return;
    for (const p of this.o.pollers) {
      // Whatever goes wrong with the cache means "no cache", never a failed tick.
      const loaded = await loadSnapshot(this.o.cacheDir, p.pool).catch((err: unknown) => ({ status: "corrupt" as const, error: errorMessage(err) }));
      if (loaded.status === "loaded") {
        const snap = loaded.snapshot;
        this.snapshots.set(p.pool, snap);
        Object.assign(this.status.get(p.pool)!, { generation: snap.head.generation, from: "cache", invalid: snap.invalid.length });
        this.log.info("loaded the last good snapshot from the cache", { pool: p.pool, generation: snap.head.generation });
        for (const bad of snap.invalid) this.log.warn("invalid slot item kept in maint", { pool: p.pool, slot: bad.slot, problems: bad.problems });
      } else if (loaded.status === "corrupt") {
        this.log.warn("ignoring a corrupt snapshot cache file", { pool: p.pool, reason: loaded.error });
      }
    }
  }

  async tick(): Promise<ClientTickResult> {
    const started = this.clock.monotonic();
    if (!this.cacheLoaded) await this.loadCache();
    // Pools are read side by side: one slow or black-holed read must not delay the others.
    await Promise.all(this.o.pollers.map((p) => this.read(p)));
    const result: ClientTickResult = { pools: [...this.status.values()].map((s) => ({ ...s })), durationMs: 0 };
    const snapshots = [...this.snapshots.values()];
    if (snapshots.length > 0) {
      try {
        result.reconcile = await this.o.reconciler.tick(snapshots);
        this.lastRuntimeError = undefined;
        this.applied ||= result.reconcile.failed.length === 0;
        this.logReconcile(result.reconcile);
      } catch (err) {
        result.runtimeError = errorMessage(err);
        this.lastRuntimeError = result.runtimeError;
        this.log.error("HAProxy Runtime API unusable this tick", { error: result.runtimeError });
      }
    }
    result.durationMs = this.clock.monotonic() - started;
    this.o.onTick?.(result);
    return result;
  }

  private async read(p: SnapshotPoller): Promise<void> {
    const status = this.status.get(p.pool)!;
    const current = this.snapshots.get(p.pool);
    try {
      // A cached snapshot is never taken as up to date: read the pool once from the table.
      const known = status.from === "table" ? current?.head.generation : undefined;
      const polled = await p.poll(known);
      status.lastReadAt = this.clock.monotonic();
      if (this.failingReads.delete(p.pool)) this.log.info("table readable again", { pool: p.pool });
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
        await saveSnapshot(this.o.cacheDir, snap).catch((err: unknown) =>
          this.log.warn("could not write the snapshot cache (fail-static restarts need it)", { dir: this.o.cacheDir, error: errorMessage(err) }),
        );
      }
    } catch (err) {
      const was = status.lastError;
      status.lastError = `table unreadable: ${errorMessage(err)}`;
      this.failingReads.add(p.pool);
      if (was !== status.lastError) this.log.warn("cannot read the table, HAProxy keeps its last state", { pool: p.pool, error: errorMessage(err) });
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

  /** /readyz: a snapshot was applied, and every pool was read from the table recently enough. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    const now = this.clock.monotonic();
    if (!this.applied) reasons.push("client: no snapshot applied to HAProxy yet");
    if (this.lastRuntimeError) reasons.push(`client: HAProxy Runtime API: ${this.lastRuntimeError}`);
    for (const s of this.status.values()) {
      // A failed read alone is no reason (fail static rides out DynamoDB blips); a last good read older than the limit is.
      const failing = this.failingReads.has(s.pool);
      const cause = failing && s.lastError ? `: ${s.lastError}` : "";
      if (s.lastError && !failing) reasons.push(`client: pool ${s.pool}: ${s.lastError}`);
      if (s.lastReadAt === undefined) reasons.push(`client: pool ${s.pool}: table not read yet${cause}`);
      else if (now - s.lastReadAt > this.o.maxSnapshotAgeMs) {
        reasons.push(`client: pool ${s.pool}: table last read ${Math.round((now - s.lastReadAt) / 1000)}s ago (limit ${this.o.maxSnapshotAgeMs / 1000}s)${cause}`);
      }
    }
    return { ready: reasons.length === 0, reasons };
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
    while (!signal.aborted) {
      await this.tick();
      await sleep(this.o.intervalMs, signal);
    }
  }
}
