import { randomUUID } from "node:crypto";
import { GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { HsdoError, LeaseLostError, callHook, silentLogger, systemClock, type Clock, type Logger } from "@hsdo/core";
import { absent, epochIs, expression, ownerIs, rvnIs } from "./conditions.ts";
import { LeaseTakenError, MalformedItemError } from "./errors.ts";
import { keyOf, leaseAttributes, parseLease, toItem, type Item, type LeaseRecord } from "./items.ts";
import { isConditionalCheckFailed, observed, type Observe } from "./observe.ts";
import { HEAD_SLOT, LEASE_SLOT } from "./table.ts";
import type { WriteTerm } from "./writer.ts";
import * as machine from "./lease-machine.ts";
import type { Condition, LeaseState, LeaseWrite, MachineConfig, WriteOutcome } from "./lease-machine.ts";

/** One leadership term. `signal` is aborted, with a LeaseLostError as its reason, the moment the term ends. */
export interface LeaseTerm extends WriteTerm {
  readonly owner: string;
  readonly epoch: number;
  readonly signal: AbortSignal;
}

export type LeaseStatus =
  | {
      role: "leader";
      term: LeaseTerm;
      /** Time left, on this process's monotonic clock, before it stops by itself unless renewed. */
      validForMs: number;
    }
  | {
      role: "standby";
      /** The lease as last read; undefined when there is none (or none could be read). */
      holder: LeaseRecord | undefined;
      /** How long the holder's rvn has been seen unchanged, on this process's monotonic clock. */
      unchangedForMs: number;
      /** Set on the tick that ended this process's own term. */
      lost?: LeaseLostError;
    };

export interface LeaseKeeperOptions {
  client: DynamoDBClient;
  table: string;
  pool: string;
  /** This contender's identity (host, pid...), written as `owner`. */
  owner: string;
  /** How long a silent holder keeps the lease (the time a standby waits on an unchanged rvn). */
  leaseMs: number;
  /** The holder stops this long before leaseMs (default leaseMs / 5): covers clock-rate drift and a slow event loop. */
  safetyMarginMs?: number;
  clock?: Clock;
  observe?: Observe;
  /** Source of record versions (default: random UUIDs). */
  newRvn?: () => string;
  /** Where a throwing callback is reported (default: nowhere). */
  log?: Logger;
  /** Called when a term starts. What a callback throws is logged (callHook), never taken for a lease failure. */
  onBecameLeader?: (term: LeaseTerm) => void;
  /** Called once when a term ends, after its signal was aborted. */
  onLostLeadership?: (error: LeaseLostError, term: LeaseTerm) => void;
}

interface Held {
  term: LeaseTerm;
  controller: AbortController;
}

/**
 * Leader election on the pool's lease item (slot -1), without trusting any
 * clock but this process's monotonic one (the DynamoDB lock client's
 * technique, docs/ARCHITECTURE.md, "Leader election"). The decisions are the
 * pure state machine of lease-machine.ts; this class does its I/O:
 *
 * - a standby reads the lease (consistent) every tick and remembers when it
 *   first saw its current rvn; once that rvn has stayed unchanged for a full
 *   leaseMs, it takes the lease with a write conditional on that rvn, as
 *   owner, with an epoch above every epoch it saw and a new rvn;
 * - the holder renews every tick (new rvn, conditional on owner and epoch);
 * - the holder ends its term by itself once leaseMs - safetyMarginMs have
 *   passed since the send time of its last successful write, so it has
 *   stopped before any standby can take over. A timer enforces this even if
 *   ticks stop coming; tick() enforces it with injected clocks;
 * - a holder told it is fenced out (fencedOut(): a data write refused for a
 *   stored epoch above its own) takes a term above that epoch on its next
 *   tick, from its own (conditional on owner and epoch): it never keeps a
 *   lease it cannot publish under.
 *
 * The caller drives it: tick() every heartbeatMs. DynamoDB errors other than
 * a failed condition are rethrown unchanged (transient: tick again).
 */
export class LeaseKeeper {
  readonly pool: string;
  readonly owner: string;
  private readonly log: Logger;
  readonly leaseMs: number;
  readonly safetyMarginMs: number;
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly clock: Clock;
  private readonly observe: Observe | undefined;
  private readonly newRvn: () => string;
  private readonly onBecameLeader: LeaseKeeperOptions["onBecameLeader"];
  private readonly onLostLeadership: LeaseKeeperOptions["onLostLeadership"];
  private readonly cfg: MachineConfig;
  /** The machine's state: the only place decisions are kept. */
  private state: LeaseState = machine.initialState;
  /** The term handed out for the machine's leader state (its signal, its callbacks). */
  private held: Held | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: LeaseKeeperOptions) {
    const { leaseMs } = options;
    if (!Number.isInteger(leaseMs) || leaseMs < 1) throw new HsdoError(`lease: leaseMs ${leaseMs} is not a duration (expected an integer >= 1 ms)`);
    const margin = options.safetyMarginMs ?? Math.max(1, Math.round(leaseMs / 5));
    if (!(margin >= 0 && margin < leaseMs)) {
      throw new HsdoError(`lease: safetyMarginMs ${margin} must be >= 0 and below leaseMs (${leaseMs})`);
    }
    if (options.owner === "") throw new HsdoError("lease: owner must not be empty");
    this.client = options.client;
    this.table = options.table;
    this.pool = options.pool;
    this.owner = options.owner;
    this.log = options.log ?? silentLogger;
    this.leaseMs = leaseMs;
    this.safetyMarginMs = margin;
    this.cfg = { owner: this.owner, leaseMs, safetyMarginMs: margin };
    this.clock = options.clock ?? systemClock;
    this.observe = options.observe;
    this.newRvn = options.newRvn ?? randomUUID;
    this.onBecameLeader = options.onBecameLeader;
    this.onLostLeadership = options.onLostLeadership;
  }

  /** A good tick interval: three renewals fit in the holder's validity. */
  get heartbeatMs(): number {
    return Math.max(1, Math.floor((this.leaseMs - this.safetyMarginMs) / 3));
  }

  /** The current term, or undefined when not leader (expiry is checked on the spot). */
  get term(): LeaseTerm | undefined {
    this.checkExpiry();
    return this.held?.term;
  }

  /** One step: the holder renews, a standby watches and takes over when the lease is free. */
  async tick(): Promise<LeaseStatus> {
    if (this.stopped) throw new HsdoError(`lease keeper of pool ${this.pool} was stopped`);
    if (this.state.role === "leader") {
      const expired = this.checkExpiry();
      if (expired) return { role: "standby", holder: undefined, unchangedForMs: 0, lost: expired };
      try {
        await this.renew();
      } catch (err) {
        if (!(err instanceof LeaseLostError)) throw err;
        const holder = err instanceof LeaseTakenError ? err.holder : undefined;
        return { role: "standby", holder, unchangedForMs: 0, lost: err };
      }
      return this.leaderStatus();
    }
    return this.contend();
  }

  /**
   * The holder's heartbeat: a new rvn, conditional on owner and epoch (or,
   * fenced out, a term above the stored epoch, on the same condition).
   * Throws LeaseLostError (and ends the term) when deposed.
   */
  async renew(): Promise<void> {
    const expired = this.checkExpiry();
    if (expired) throw expired;
    if (this.state.role !== "leader") throw new LeaseLostError(this.owner, "not the leader");
    const stepped = machine.tick(this.cfg, this.state, this.clock.monotonic(), this.newRvn());
    this.state = stepped.state;
    const decision = stepped.decision;
    if (decision.kind !== "write") throw new Error(`lease: a valid leader's tick decided ${decision.kind} (bug)`);
    const { write } = decision;
    let evidence: Item | undefined;
    const outcome = await this.send(write, (item) => (evidence = item));
    const answer = machine.answered(this.cfg, this.state, write, outcome.outcome, this.clock.monotonic());
    this.state = answer.state;
    const event = answer.event;
    if (outcome.error) {
      // No answer: the machine kept what it could (a raise stays pending); the caller sees the error unchanged.
      this.sync(new LeaseLostError(this.owner, `the lease write of epoch ${write.epoch} got no answer in time`));
      throw outcome.error;
    }
    switch (event.kind) {
      case "renewed":
        this.scheduleExpiry();
        return;
      case "began": {
        const reason = `fenced out: a stored epoch is above ${event.ended}; took epoch ${event.epoch} from our own lease`;
        this.sync(new LeaseLostError(this.owner, reason));
        return;
      }
      case "deposed": {
        const holder = evidence ? leaseOrUndefined(evidence) : await this.readQuietly();
        const lost = new LeaseTakenError(this.owner, event.epoch, holder, { cause: outcome.cause });
        this.sync(lost);
        throw lost;
      }
      case "tooLate": {
        const lost = new LeaseLostError(this.owner, "the renewal was answered after the lease had already expired here");
        this.sync(lost);
        throw lost;
      }
      default:
        this.sync(new LeaseLostError(this.owner, `lease write ended with ${event.kind}`));
        if (this.state.role !== "leader") throw new LeaseLostError(this.owner, "not the leader");
    }
  }

  /**
   * The server's writer found a head or slot item with an epoch above this
   * term's (FencedOutError): this term can never publish. The next tick takes
   * a term above `storedEpoch` from our own lease (or finds it lost). A term
   * that already ended, or an older term than the current one, is ignored.
   */
  fencedOut(term: { readonly epoch: number }, storedEpoch: number | undefined): void {
    this.state = machine.fencedOut(this.state, term.epoch, storedEpoch);
  }

  /**
   * Ends the term on purpose (graceful shutdown): aborts the signal first,
   * then marks the lease released so a standby takes over at once instead of
   * waiting leaseMs.
   */
  async release(): Promise<void> {
    const r = machine.release(this.cfg, this.state, this.clock.monotonic(), this.newRvn());
    this.state = r.state;
    this.sync(new LeaseLostError(this.owner, "released"));
    const write = r.write;
    if (!write) return;
    try {
      await observed("lease.release", this.observe, () =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: keyOf(this.pool, LEASE_SLOT),
            ...expression({
              set: { rvn: write.rvn, released: true, renewedAt: this.clock.now() },
              condition: conditionClauses(write.condition),
            }),
            ReturnConsumedCapacity: "TOTAL",
          }),
        ),
      );
    } catch (err) {
      // Someone else holds it already: nothing left to release.
      if (!isConditionalCheckFailed(err)) throw err;
    }
  }

  /** Ends the term without writing (the lease then runs out for the standbys) and stops the expiry timer for good. */
  stop(): void {
    if (this.state.role === "leader") this.state = machine.initialState;
    this.sync(new LeaseLostError(this.owner, "stopped"));
    this.stopped = true;
    this.clearTimer();
  }

  private async contend(): Promise<LeaseStatus> {
    const item = await this.readItem();
    let lease: LeaseRecord | undefined;
    if (item) {
      const parsed = parseLease(item);
      if (!parsed.ok) throw new MalformedItemError(this.table, this.pool, LEASE_SLOT, parsed.problems);
      lease = parsed.value;
    }
    // Measured from after the read returned: never earlier than the write of that rvn, so never earlier than the holder's own count.
    let seen = machine.observe(this.cfg, this.state, { lease }, this.clock.monotonic(), this.newRvn());
    if (seen.decision.kind === "readHead") {
      const headEpoch = await this.epochFloor();
      seen = machine.observe(this.cfg, this.state, { lease, headEpoch }, this.clock.monotonic(), this.newRvn());
    }
    this.state = seen.state;
    const decision = seen.decision;
    switch (decision.kind) {
      case "lead":
        this.sync(undefined);
        return this.leaderStatus();
      case "wait":
        return { role: "standby", holder: lease, unchangedForMs: decision.unchangedForMs };
      case "readHead":
        throw new Error("lease: the machine asked for the head twice (bug)");
      case "write":
        return this.take(decision.write, lease);
    }
  }

  private async take(write: LeaseWrite, seen: LeaseRecord | undefined): Promise<LeaseStatus> {
    let evidence: Item | undefined;
    const outcome = await this.send(write, (item) => (evidence = item));
    const answer = machine.answered(this.cfg, this.state, write, outcome.outcome, this.clock.monotonic());
    this.state = answer.state;
    // Any other error keeps the take pending: the write may have landed, and the next read will tell.
    if (outcome.error) throw outcome.error;
    this.sync(undefined);
    if (answer.event.kind === "notTaken") {
      // The SDK retries a request whose answer was lost, and the retry of a
      // take that landed fails its condition against our own write. So the
      // take stays pending: the next read recognises our rvn and leads.
      return { role: "standby", holder: evidence ? leaseOrUndefined(evidence) : seen, unchangedForMs: 0 };
    }
    if (this.held) return this.leaderStatus();
    return { role: "standby", holder: undefined, unchangedForMs: 0 };
  }

  /** Sends one lease write; a failed condition and a missing answer become outcomes (the error kept for the caller). */
  private async send(
    write: LeaseWrite,
    onEvidence: (item: Item) => void,
  ): Promise<{ outcome: WriteOutcome; error?: unknown; cause?: unknown }> {
    const wall = this.clock.now();
    const command =
      write.kind === "take"
        ? new PutItemCommand({
            TableName: this.table,
            Item: toItem(leaseAttributes(this.pool, { owner: write.owner, epoch: write.epoch, rvn: write.rvn, leaseMs: write.leaseMs, renewedAt: wall })),
            ...expression({ condition: conditionClauses(write.condition) }),
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            ReturnConsumedCapacity: "TOTAL",
          })
        : new UpdateItemCommand({
            TableName: this.table,
            Key: keyOf(this.pool, LEASE_SLOT),
            ...expression({
              set: { rvn: write.rvn, leaseMs: write.leaseMs, renewedAt: wall, ...(write.kind === "raise" ? { epoch: write.epoch } : {}) },
              condition: conditionClauses(write.condition),
            }),
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            ReturnConsumedCapacity: "TOTAL",
          });
    const operation = write.kind === "take" ? "lease.take" : write.kind === "raise" ? "lease.raise" : "lease.renew";
    try {
      await observed(operation, this.observe, () => this.client.send(command as PutItemCommand));
      return { outcome: "ok" };
    } catch (err) {
      if (!isConditionalCheckFailed(err)) return { outcome: "lost", error: err };
      if (err.Item) onEvidence(err.Item);
      return { outcome: "conditionFailed", cause: err };
    }
  }

  /**
   * With no lease item at all (a new table, or a deleted item), the new term
   * must still be above any epoch already stamped on the head, or the fence
   * would refuse every write of the new leader.
   */
  private async epochFloor(): Promise<number> {
    const out = await observed("head.read", this.observe, () =>
      this.client.send(
        new GetItemCommand({ TableName: this.table, Key: keyOf(this.pool, HEAD_SLOT), ConsistentRead: true, ReturnConsumedCapacity: "TOTAL" }),
      ),
    );
    const n = out.Item?.epoch?.N === undefined ? 0 : Number(out.Item.epoch.N);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }

  private async readItem(): Promise<Item | undefined> {
    const out = await observed("lease.read", this.observe, () =>
      this.client.send(
        new GetItemCommand({ TableName: this.table, Key: keyOf(this.pool, LEASE_SLOT), ConsistentRead: true, ReturnConsumedCapacity: "TOTAL" }),
      ),
    );
    return out.Item;
  }

  /** Evidence for LeaseTakenError when the failed write did not return the old item (dynalite): best effort. */
  private async readQuietly(): Promise<LeaseRecord | undefined> {
    try {
      const item = await this.readItem();
      return item ? leaseOrUndefined(item) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Makes the handed-out term follow the machine: a term whose epoch the
   * machine no longer leads under ends (signal aborted with `error`), and a
   * new leader state gets a new term.
   */
  private sync(error: LeaseLostError | undefined): void {
    const s = this.state;
    const held = this.held;
    if (held && (s.role !== "leader" || s.epoch !== held.term.epoch)) {
      this.held = undefined;
      this.clearTimer();
      const reason = error ?? new LeaseLostError(this.owner, "the term ended");
      held.controller.abort(reason);
      callHook(this.log, "onLostLeadership", () => this.onLostLeadership?.(reason, held.term));
    }
    if (s.role === "leader" && !this.held && !this.stopped) {
      const controller = new AbortController();
      const term: LeaseTerm = { owner: this.owner, epoch: s.epoch, signal: controller.signal };
      this.held = { term, controller };
      callHook(this.log, "onBecameLeader", () => this.onBecameLeader?.(term));
    }
    if (this.held) this.scheduleExpiry();
  }

  private leaderStatus(): LeaseStatus {
    const held = this.held;
    const until = machine.validUntil(this.cfg, this.state);
    if (!held || until === undefined) throw new Error("leaderStatus without a term (bug)");
    return { role: "leader", term: held.term, validForMs: until - this.clock.monotonic() };
  }

  /** Ends the term if its validity has run out; returns the error it ended with. */
  private checkExpiry(): LeaseLostError | undefined {
    const e = machine.expire(this.cfg, this.state, this.clock.monotonic());
    if (!e.expired) return undefined;
    this.state = e.state;
    const limit = this.leaseMs - this.safetyMarginMs;
    const error = new LeaseLostError(
      this.owner,
      `could not renew for ${Math.round(e.expired.ageMs)} ms, past the limit of ${limit} ms ` +
        `(lease ${this.leaseMs} ms minus safety margin ${this.safetyMarginMs} ms); a standby may take over now`,
    );
    this.sync(error);
    return error;
  }

  private scheduleExpiry(): void {
    this.clearTimer();
    const until = machine.validUntil(this.cfg, this.state);
    if (!this.held || until === undefined) return;
    const remaining = until - this.clock.monotonic();
    // Re-checked against the clock when it fires: timers may fire early, and tests inject clocks.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.checkExpiry()) this.scheduleExpiry();
    }, Math.max(0, Math.ceil(remaining)) + 1);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function conditionClauses(condition: Condition) {
  switch (condition.kind) {
    case "absent":
      return [absent()];
    case "rvn":
      return [rvnIs(condition.rvn)];
    case "term":
      return [ownerIs(condition.owner), epochIs(condition.epoch)];
  }
}

/** The pool's lease as stored (consistent read), for status displays; undefined when there is none. */
export async function readLease(
  client: DynamoDBClient,
  table: string,
  pool: string,
  observe?: Observe,
): Promise<LeaseRecord | undefined> {
  const out = await observed("lease.read", observe, () =>
    client.send(new GetItemCommand({ TableName: table, Key: keyOf(pool, LEASE_SLOT), ConsistentRead: true, ReturnConsumedCapacity: "TOTAL" })),
  );
  if (!out.Item) return undefined;
  const parsed = parseLease(out.Item);
  if (!parsed.ok) throw new MalformedItemError(table, pool, LEASE_SLOT, parsed.problems);
  return parsed.value;
}

function leaseOrUndefined(item: Item): LeaseRecord | undefined {
  const parsed = parseLease(item);
  return parsed.ok ? parsed.value : undefined;
}

