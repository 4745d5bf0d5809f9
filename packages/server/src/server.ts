import {
  ConfigError,
  TerminalError,
  callHook,
  FencedOutError,
  LeaseLostError,
  errorMessage,
  normalizeSlots,
  silentLogger,
  targetProblems,
  sleep,
  systemClock,
  type AddressPolicy,
  type Clock,
  type Head,
  type InvalidSlot,
  type Logger,
  type Slot,
  type Snapshot,
  type Target,
  type ValveState,
} from "@hsdo/core";
import { planPublication, type LeaseStatus, type LeaseTerm, type PublishChange, type PublishResult, type WriteTerm } from "@hsdo/store";
import type { TargetSource } from "./sources/types.ts";
import { LifecycleReleaser } from "./lifecycle.ts";
import { serverStep, type SlotPolicy } from "./step.ts";

/** The narrow parts of the store the server needs: easy to fake, easy to read. */
export interface LeaseLike {
  tick(): Promise<LeaseStatus>;
  readonly term: LeaseTerm | undefined;
  release(): Promise<void>;
  stop(): void;
  /** A data write of `term` was refused for a stored epoch above it: take a term above that epoch, or let the lease go (LeaseKeeper.fencedOut). */
  fencedOut?(term: LeaseTerm, storedEpoch: number | undefined): void;
}

export interface WriterLike {
  stampEpoch(term: WriteTerm, size: number): Promise<Snapshot>;
  publish(term: WriteTerm, change: PublishChange): Promise<PublishResult>;
}

export interface ReaderLike {
  snapshot(): Promise<Snapshot | undefined>;
}

export interface ServerOptions {
  pool: string;
  source: TargetSource;
  lease: LeaseLike;
  writer: WriterLike;
  reader: ReaderLike;
  /** How slots are kept: size, weight ramp, drain, safety valve. */
  slots: SlotPolicy;
  /**
   * Which addresses may be published (targetProblems): loopback only when
   * the configuration allows it (`allowLoopback`); link-local, unspecified,
   * multicast and broadcast never.
   */
  addresses?: AddressPolicy;
  intervalMs: number;
  heartbeatMs: number;
  dryRun?: boolean;
  clock?: Clock;
  log?: Logger;
  /** Called after every tick with its outcome (metrics, status). Must not throw. */
  onTick?: (result: ServerTickResult) => void;
  /** Called after every lease tick. Must not throw. */
  onLease?: (status: LeaseStatus | undefined, error?: unknown) => void;
}

export interface ServerTickResult {
  role: "leader" | "standby" | "dry-run";
  epoch?: number;
  /** Generation of the pool after this tick (leader, dry run). */
  generation?: number;
  slots?: Slot[];
  /** The source's answer; undefined when it failed. */
  targets?: Target[];
  sourceError?: string;
  /** Slots written (or, in a dry run, that would be). */
  changed: Slot[];
  published: boolean;
  valveHolding: boolean;
  live: number;
  removing: number;
  unassigned: Target[];
  /** Targets whose lifecycle action was completed this tick. */
  released: string[];
  /** Lifecycle completions that failed this tick (retried next tick). */
  releaseFailures?: number;
  /** Anything else that went wrong (store errors); the tick changed nothing it could not finish. */
  error?: string;
  /** A dry run's would-be writes, as printed. */
  writes?: PublishResult["writes"];
  /** How long the tick took, on the monotonic clock. */
  durationMs?: number;
  /** Slots whose item failed validation and that nothing identifies yet: kept occupied, assignable to nobody. */
  quarantined?: InvalidSlot[];
}

/**
 * The server's reconcile loop. One tick: list the source, compute the slots
 * (pure: serverStep), publish only the difference under the term's fence,
 * let drained instances go. Only the loop sleeps; a tick never retries on
 * its own. The lease runs on its own heartbeat so a slow source can never
 * starve renewals.
 */
export class Server {
  private readonly o: ServerOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** Where the table stands for the current term: set by the stamp at takeover, then by each publish. */
  private state: { epoch: number; head: Head; slots: Slot[]; quarantine: InvalidSlot[] } | undefined;
  /** The quarantine last reported (slots and problems), so the warning repeats only when it changes. */
  private lastQuarantine = "";
  private accepted: readonly Target[] | undefined;
  private valve: ValveState = {};
  private readonly releaser: LifecycleReleaser;
  /** Ends the reconcile loop's sleep early (a new term: take over now). */
  private wake: AbortController | undefined;
  /** Targets kept out for invalid fields, with their problems (logged when they change). */
  private rejected = new Map<string, string>();
  /** The source's own problems with its last answer (logged when they appear). */
  private sourceProblems = new Set<string>();
  private lastUnassigned = 0;
  private tickStartedAt = 0;
  /** Why the last tick could not work, for /readyz. */
  lastSourceOk = false;
  lastLease: LeaseStatus | undefined;
  lastLeaseError: string | undefined;

  constructor(options: ServerOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    this.releaser = new LifecycleReleaser(options.source, this.clock, 2 * options.intervalMs, this.log);
  }

  /** One lease step; the loop calls it every heartbeat. Errors are reported, never thrown. */
  async leaseTick(): Promise<LeaseStatus | undefined> {
    try {
      const status = await this.o.lease.tick();
      const was = this.lastLease?.role;
      const wasEpoch = this.lastLease?.role === "leader" ? this.lastLease.term.epoch : undefined;
      this.lastLease = status;
      this.lastLeaseError = undefined;
      // A new term: taken, or raised above a fence (same role, higher epoch).
      if (status.role === "leader" && status.term.epoch !== wasEpoch) {
        this.log.info("became leader", { pool: this.o.pool, epoch: status.term.epoch });
        // The takeover (stamp, first publication) starts now, not up to an interval later.
        this.wake?.abort();
      }
      // The keeper's own timer may have ended the term between two ticks: a leader now standing by lost it either way.
      if (status.role === "standby" && (status.lost || was === "leader")) {
        this.log.warn("lost leadership", { pool: this.o.pool, reason: status.lost?.message ?? "the lease was not renewed in time" });
      }
      if (status.role === "standby" && was === undefined) {
        this.log.info("standing by", { pool: this.o.pool, holder: status.holder?.owner ?? "(none)" });
      }
      callHook(this.log, "onLease", () => this.o.onLease?.(status));
      return status;
    } catch (err) {
      this.lastLeaseError = errorMessage(err);
      this.log.warn("lease: DynamoDB error, retrying next heartbeat", { pool: this.o.pool, error: this.lastLeaseError });
      callHook(this.log, "onLease", () => this.o.onLease?.(undefined, err));
      return undefined;
    }
  }

  /** One reconcile. Never throws for source or store trouble: the outcome says what happened. */
  async tick(signal?: AbortSignal): Promise<ServerTickResult> {
    this.tickStartedAt = this.clock.monotonic();
    const base: ServerTickResult = { role: "standby", changed: [], published: false, valveHolding: false, live: 0, removing: 0, unassigned: [], released: [] };
    let targets: Target[];
    try {
      targets = await this.o.source.list(signal);
      this.lastSourceOk = true;
    } catch (err) {
      // Fail static: a source error changes nothing.
      this.lastSourceOk = false;
      const sourceError = errorMessage(err);
      this.log.warn("source failed, keeping the published slots", { source: this.o.source.name, error: sourceError });
      return this.report({ ...base, role: this.o.dryRun ? "dry-run" : this.role(), sourceError });
    }
    this.reportSourceProblems();
    targets = this.screen(targets);
    base.targets = targets;
    if (this.o.dryRun) {
      try {
        return this.report(await this.dryRunTick(targets, base));
      } catch (err) {
        if (err instanceof ConfigError) throw new TerminalError(err);
        this.log.error("dry run: could not read the pool", { pool: this.o.pool, error: errorMessage(err) });
        return this.report({ ...base, role: "dry-run", error: errorMessage(err) });
      }
    }

    const term = this.o.lease.term;
    if (!term) {
      this.state = undefined;
      return this.report({ ...base, role: "standby" });
    }
    try {
      if (this.state?.epoch !== term.epoch) await this.takeOver(term);
      return this.report(await this.leaderTick(term, targets, base));
    } catch (err) {
      // A configuration that cannot drive this pool (a size that would cut an occupied slot) needs the operator.
      if (err instanceof ConfigError) throw new TerminalError(err);
      // The table may hold part of a publication: read it back (and re-stamp) before the next one.
      this.state = undefined;
      const fenced = err instanceof FencedOutError || err instanceof LeaseLostError || term.signal.aborted;
      // Fenced out while still holding the lease (a restore, a head written by hand): never keep a lease we cannot
      // publish under. The next lease tick takes a term above the stored epoch (docs/ARCHITECTURE.md, "Fencing").
      if (err instanceof FencedOutError && !term.signal.aborted) this.o.lease.fencedOut?.(term, err.storedEpoch);
      if (fenced) this.log.warn("stopped publishing: no longer leader", { pool: this.o.pool, epoch: term.epoch, error: errorMessage(err) });
      else this.log.error("publish failed, will resync from the table", { pool: this.o.pool, error: errorMessage(err) });
      return this.report({ ...base, role: fenced ? "standby" : "leader", epoch: term.epoch, error: errorMessage(err) });
    }
  }

  /**
   * A target whose fields could not be published, or whose address can
   * never be a target (169.254.169.254; loopback unless allowed), is kept
   * out (as pending: a slot it holds drains with its last good values),
   * logged once, so it never blocks the others.
   */
  private screen(targets: Target[]): Target[] {
    const bad = new Map<string, string>();
    const out = targets.map((t) => {
      const problems = targetProblems(t, this.o.addresses);
      if (problems.length === 0) return t;
      bad.set(t.id, problems.join("; "));
      return { ...t, health: "pending" as const };
    });
    for (const [id, problems] of bad) {
      if (this.rejected.get(id) !== problems) this.log.warn("target kept out: it cannot be published", { source: this.o.source.name, id, problems });
    }
    this.rejected = bad;
    return out;
  }

  /** Like kept-out targets: each problem the source reports is logged once, when it appears. */
  private reportSourceProblems(): void {
    const now = new Set(this.o.source.problems?.() ?? []);
    for (const problem of now) {
      if (!this.sourceProblems.has(problem)) this.log.warn("source entry not usable as listed", { source: this.o.source.name, problem });
    }
    this.sourceProblems = now;
  }

  private role(): "leader" | "standby" {
    return this.o.lease.term ? "leader" : "standby";
  }

  /**
   * At the start of a term: stamp our epoch everywhere (which also rolls a
   * pool torn by a dead leader forward), then refuse a size that would cut
   * off an occupied slot. Nothing but epochs is written before that check.
   */
  private async takeOver(term: LeaseTerm): Promise<void> {
    const snap = await this.o.writer.stampEpoch(term, this.o.slots.size);
    normalizeSlots(snap.slots, this.o.slots.size);
    // What we cannot read we say, and keep occupied until a tick identifies whose it is (assignSlots).
    this.state = { epoch: term.epoch, head: snap.head, slots: snap.slots, quarantine: snap.invalid };
    for (const bad of snap.invalid) {
      this.log.warn("slot item cannot be read: quarantined (kept occupied) until its target is identified", {
        pool: this.o.pool,
        slot: bad.slot,
        problems: bad.problems,
        name: bad.name,
        addr: bad.addr,
      });
    }
    this.lastQuarantine = JSON.stringify(snap.invalid.map((q) => [q.slot, q.problems]));
    this.accepted = undefined;
    this.valve = {};
    this.log.info("stamped epoch on the pool", { pool: this.o.pool, epoch: term.epoch, generation: snap.head.generation, size: snap.head.size });
  }

  private async leaderTick(term: LeaseTerm, targets: Target[], base: ServerTickResult): Promise<ServerTickResult> {
    const state = this.state!;
    const now = this.clock.now();
    const step = serverStep({ slots: state.slots, targets, accepted: this.accepted, valve: this.valve, now, cfg: this.o.slots, quarantine: state.quarantine });
    this.accepted = step.accepted;
    this.valve = step.valve;
    this.reportQuarantine(step.quarantined);
    if (step.valveHolding) {
      this.log.warn("safety valve: holding a source answer that would remove many targets", {
        pool: this.o.pool,
        live: step.live,
        removing: step.removing,
        seen: step.valve.held?.seen,
        confirmTicks: this.o.slots.confirmTicks,
      });
    }
    if (step.unassigned.length !== this.lastUnassigned) {
      this.lastUnassigned = step.unassigned.length;
      if (step.unassigned.length > 0) {
        this.log.warn("more ready targets than slots: the extra wait for a free slot", {
          pool: this.o.pool,
          size: this.o.slots.size,
          waiting: step.unassigned.map((t) => t.id),
        });
      }
    }
    let head = state.head;
    const resize = head.size !== this.o.slots.size;
    if (step.changed.length > 0 || resize) {
      const change: PublishChange = { base: head, changed: step.changed, size: this.o.slots.size };
      const result = await this.o.writer.publish(term, change);
      head = result.head;
      this.state = { epoch: term.epoch, head, slots: step.slots, quarantine: step.quarantined };
      for (const s of step.changed) {
        this.log.info("slot changed", { pool: this.o.pool, slot: s.slot, state: s.state, name: s.name ?? s.last, addr: s.addr, weight: s.weight, generation: head.generation });
      }
      for (const g of step.gone) this.log.info("target gone from the source: slot freed (maint) for one generation", { pool: this.o.pool, slot: g.slot, name: g.name });
      for (const r of step.repaired) {
        this.log.warn(r.how === "repaired" ? "invalid slot item repaired for its live target" : "invalid slot item freed: its target is gone or not ready", {
          pool: this.o.pool,
          slot: r.slot.slot,
          name: r.slot.name ?? r.slot.last,
          problems: r.problems,
        });
      }
    } else {
      this.state = { ...state, slots: step.slots, quarantine: step.quarantined };
    }
    const { done: released, failures: releaseFailures } = await this.releaser.release(step.releasable, targets);
    return {
      ...base,
      role: "leader",
      epoch: term.epoch,
      generation: head.generation,
      slots: step.slots,
      changed: step.changed,
      published: step.changed.length > 0 || resize,
      valveHolding: step.valveHolding,
      live: step.live,
      removing: step.removing,
      unassigned: step.unassigned,
      released,
      releaseFailures,
      quarantined: step.quarantined,
    };
  }

  /** Warns of the quarantined slots when the set (or a problem) changes: at takeover, then on every change. */
  private reportQuarantine(quarantined: readonly InvalidSlot[]): void {
    const key = JSON.stringify(quarantined.map((q) => [q.slot, q.problems]));
    if (key === this.lastQuarantine) return;
    this.lastQuarantine = key;
    for (const q of quarantined) {
      this.log.warn("invalid slot item quarantined: kept occupied, nothing identifies its target; fix or delete the item", {
        pool: this.o.pool,
        slot: q.slot,
        problems: q.problems,
      });
    }
  }

  /** --dry-run: read the pool, compute, show; take no lease and write nothing. */
  private async dryRunTick(targets: Target[], base: ServerTickResult): Promise<ServerTickResult> {
    const current = await this.o.reader.snapshot();
    const slots = current?.slots ?? [];
    const now = this.clock.now();
    const step = serverStep({ slots, targets, accepted: this.accepted, valve: this.valve, now, cfg: this.o.slots, quarantine: current?.invalid ?? [] });
    this.accepted = step.accepted;
    this.valve = step.valve;
    const head: Head = current?.head ?? { generation: 0, epoch: 0, leader: "", updatedAt: now, size: this.o.slots.size };
    const change: PublishChange = { base: head, changed: step.changed, size: this.o.slots.size };
    const writes = step.changed.length > 0 ? planPublication(this.o.pool, "(dry run)", head.epoch, change, now).writes : [];
    return {
      ...base,
      role: "dry-run",
      generation: head.generation,
      slots: step.slots,
      changed: step.changed,
      valveHolding: step.valveHolding,
      live: step.live,
      removing: step.removing,
      unassigned: step.unassigned,
      writes,
      quarantined: step.quarantined,
    };
  }

  private report(result: ServerTickResult): ServerTickResult {
    result.durationMs = this.clock.monotonic() - this.tickStartedAt;
    callHook(this.log, "onTick", () => this.o.onTick?.(result));
    return result;
  }

  /**
   * Runs until `signal` aborts: the lease on its heartbeat, the reconcile on
   * its interval. A TerminalError (a size that would cut an occupied slot)
   * ends the run: it needs the operator.
   */
  async run(signal: AbortSignal): Promise<void> {
    const inner = new AbortController();
    const stop = () => inner.abort();
    signal.addEventListener("abort", stop, { once: true });
    if (signal.aborted) inner.abort();
    const loop = async (every: number, body: () => Promise<unknown>, wakeable = false) => {
      while (!inner.signal.aborted) {
        await body();
        if (!wakeable) {
          await sleep(every, inner.signal);
          continue;
        }
        this.wake = new AbortController();
        await sleep(every, AbortSignal.any([inner.signal, this.wake.signal]));
        this.wake = undefined;
      }
    };
    // The source sees the run's signal: a slow AWS listing must not hold a shutdown past its grace period.
    const loops = [loop(this.o.intervalMs, () => this.tick(inner.signal), true)];
    if (!this.o.dryRun) loops.push(loop(this.o.heartbeatMs, () => this.leaseTick()));
    try {
      // Every loop has ended before the lease is released: a lease tick still in flight could otherwise take it back.
      const ended = await Promise.allSettled(loops.map((l) => l.finally(() => inner.abort())));
      const failed = ended.find((e): e is PromiseRejectedResult => e.status === "rejected");
      if (failed) throw failed.reason;
    } finally {
      signal.removeEventListener("abort", stop);
      inner.abort();
      if (!this.o.dryRun) {
        // Release before stop: stop() ends the term, after which there is nothing left to release.
        await this.o.lease.release().catch((err: unknown) => this.log.warn("could not release the lease", { error: errorMessage(err) }));
        this.o.lease.stop();
      }
    }
  }
}
