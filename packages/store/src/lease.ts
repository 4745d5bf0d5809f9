import { randomUUID } from "node:crypto";
import { GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { HsdoError, LeaseLostError, systemClock, type Clock } from "@hsdo/core";
import { absent, epochIs, expression, ownerIs, rvnIs } from "./conditions.ts";
import { LeaseTakenError, MalformedItemError } from "./errors.ts";
import { keyOf, leaseAttributes, parseLease, toItem, type Item, type LeaseRecord } from "./items.ts";
import { isConditionalCheckFailed, observed, type Observe } from "./observe.ts";
import { HEAD_SLOT, LEASE_SLOT } from "./table.ts";
import type { WriteTerm } from "./writer.ts";

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
  /** Called when a term starts. Callbacks must not throw: what they throw is ignored. */
  onBecameLeader?: (term: LeaseTerm) => void;
  /** Called once when a term ends, after its signal was aborted. */
  onLostLeadership?: (error: LeaseLostError, term: LeaseTerm) => void;
}

interface Held {
  term: LeaseTerm;
  controller: AbortController;
  /** Monotonic send time of the last write of the lease that succeeded: the holder's validity counts from there. */
  renewedSentAt: number;
}

/**
 * Leader election on the pool's lease item (slot -1), without trusting any
 * clock but this process's monotonic one (the DynamoDB lock client's
 * technique, docs/ARCHITECTURE.md, "Leader election"):
 *
 * - a standby reads the lease (consistent) every tick and remembers when it
 *   first saw its current rvn; once that rvn has stayed unchanged for a full
 *   leaseMs, it takes the lease with a write conditional on that rvn, as
 *   owner, with epoch + 1 and a new rvn;
 * - the holder renews every tick (new rvn, conditional on owner and epoch);
 * - the holder ends its term by itself once leaseMs - safetyMarginMs have
 *   passed since the send time of its last successful write, so it has
 *   stopped before any standby can take over. A timer enforces this even if
 *   ticks stop coming; tick() enforces it with injected clocks.
 *
 * The caller drives it: tick() every heartbeatMs. DynamoDB errors other than
 * a failed condition are rethrown unchanged (transient: tick again).
 */
export class LeaseKeeper {
  readonly pool: string;
  readonly owner: string;
  readonly leaseMs: number;
  readonly safetyMarginMs: number;
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly clock: Clock;
  private readonly observe: Observe | undefined;
  private readonly newRvn: () => string;
  private readonly onBecameLeader: LeaseKeeperOptions["onBecameLeader"];
  private readonly onLostLeadership: LeaseKeeperOptions["onLostLeadership"];
  private held: Held | undefined;
  /** The rvn this standby watches, and when (monotonic) it first saw it. */
  private watched: { rvn: string; since: number } | undefined;
  /** A take whose answer never came: if it landed, the next read shows our rvn. */
  private pendingTake: { rvn: string; epoch: number; sentAt: number } | undefined;
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
    this.leaseMs = leaseMs;
    this.safetyMarginMs = margin;
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
    if (this.held) {
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

  /** The holder's heartbeat: a new rvn, conditional on owner and epoch. Throws LeaseLostError (and ends the term) when deposed. */
  async renew(): Promise<void> {
    const expired = this.checkExpiry();
    if (expired) throw expired;
    const held = this.held;
    if (!held) throw new LeaseLostError(this.owner, "not the leader");
    const sentAt = this.clock.monotonic();
    try {
      await observed("lease.renew", this.observe, () =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: keyOf(this.pool, LEASE_SLOT),
            ...expression({
              set: { rvn: this.newRvn(), leaseMs: this.leaseMs, renewedAt: this.clock.now() },
              condition: [ownerIs(this.owner), epochIs(held.term.epoch)],
            }),
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            ReturnConsumedCapacity: "TOTAL",
          }),
        ),
      );
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      const holder = err.Item ? leaseOrUndefined(err.Item) : await this.readQuietly();
      const lost = new LeaseTakenError(this.owner, held.term.epoch, holder, { cause: err });
      this.end(held, lost);
      throw lost;
    }
    if (this.held !== held) {
      throw new LeaseLostError(this.owner, "the renewal was answered after the lease had already expired here");
    }
    held.renewedSentAt = sentAt;
    this.scheduleExpiry();
  }

  /**
   * Ends the term on purpose (graceful shutdown): aborts the signal first,
   * then marks the lease released so a standby takes over at once instead of
   * waiting leaseMs.
   */
  async release(): Promise<void> {
    const held = this.held;
    if (!held) return;
    this.end(held, new LeaseLostError(this.owner, "released"));
    try {
      await observed("lease.release", this.observe, () =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: keyOf(this.pool, LEASE_SLOT),
            ...expression({
              set: { rvn: this.newRvn(), released: true, renewedAt: this.clock.now() },
              condition: [ownerIs(this.owner), epochIs(held.term.epoch)],
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
    if (this.held) this.end(this.held, new LeaseLostError(this.owner, "stopped"));
    this.stopped = true;
    this.clearTimer();
  }

  private async contend(): Promise<LeaseStatus> {
    const item = await this.readItem();
    const seenAt = this.clock.monotonic();
    const pending = this.pendingTake;
    this.pendingTake = undefined;
    if (!item) return this.take(undefined);
    const parsed = parseLease(item);
    if (!parsed.ok) throw new MalformedItemError(this.table, this.pool, LEASE_SLOT, parsed.problems);
    const lease = parsed.value;
    if (pending && lease.owner === this.owner && lease.epoch === pending.epoch && lease.rvn === pending.rvn) {
      this.begin(pending.epoch, pending.sentAt);
      if (this.held) return this.leaderStatus();
    }
    // Released by someone else: free at once. Released by us: others get the usual chance first.
    if (lease.released && lease.owner !== this.owner) return this.take(lease);
    // Measured from after the read returned: never earlier than the write of that rvn, so never earlier than the holder's own count.
    if (this.watched?.rvn !== lease.rvn) this.watched = { rvn: lease.rvn, since: seenAt };
    const unchangedForMs = seenAt - this.watched.since;
    if (unchangedForMs >= Math.max(lease.leaseMs, this.leaseMs)) return this.take(lease);
    return { role: "standby", holder: lease, unchangedForMs };
  }

  private async take(seen: LeaseRecord | undefined): Promise<LeaseStatus> {
    const epoch = (seen ? seen.epoch : await this.epochFloor()) + 1;
    const rvn = this.newRvn();
    const sentAt = this.clock.monotonic();
    this.pendingTake = { rvn, epoch, sentAt };
    try {
      await observed("lease.take", this.observe, () =>
        this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: toItem(leaseAttributes(this.pool, { owner: this.owner, epoch, rvn, leaseMs: this.leaseMs, renewedAt: this.clock.now() })),
            ...expression({ condition: [seen ? rvnIs(seen.rvn) : absent()] }),
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            ReturnConsumedCapacity: "TOTAL",
          }),
        ),
      );
    } catch (err) {
      // Any other error keeps pendingTake: the write may have landed, and the next read will tell.
      if (!isConditionalCheckFailed(err)) throw err;
      // The SDK retries a request whose answer was lost, and the retry of a
      // take that landed fails its condition against our own write. So
      // pendingTake stays: the next read recognises our rvn and leads (and
      // drops it when the item is someone else's).
      this.watched = undefined;
      return { role: "standby", holder: err.Item ? leaseOrUndefined(err.Item) : seen, unchangedForMs: 0 };
    }
    this.pendingTake = undefined;
    this.watched = undefined;
    this.begin(epoch, sentAt);
    if (this.held) return this.leaderStatus();
    return { role: "standby", holder: undefined, unchangedForMs: 0 };
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

  private begin(epoch: number, sentAt: number): void {
    // A take answered too late is no term at all.
    if (this.clock.monotonic() - sentAt >= this.leaseMs - this.safetyMarginMs) return;
    const controller = new AbortController();
    const term: LeaseTerm = { owner: this.owner, epoch, signal: controller.signal };
    this.held = { term, controller, renewedSentAt: sentAt };
    this.scheduleExpiry();
    call(() => this.onBecameLeader?.(term));
  }

  private end(held: Held, error: LeaseLostError): void {
    if (this.held !== held) return;
    this.held = undefined;
    this.watched = undefined;
    this.clearTimer();
    held.controller.abort(error);
    call(() => this.onLostLeadership?.(error, held.term));
  }

  private leaderStatus(): LeaseStatus {
    const held = this.held;
    if (!held) throw new Error("leaderStatus without a term (bug)");
    return { role: "leader", term: held.term, validForMs: this.validUntil(held) - this.clock.monotonic() };
  }

  private validUntil(held: Held): number {
    return held.renewedSentAt + this.leaseMs - this.safetyMarginMs;
  }

  /** Ends the term if its validity has run out; returns the error it ended with. */
  private checkExpiry(): LeaseLostError | undefined {
    const held = this.held;
    if (!held) return undefined;
    const age = this.clock.monotonic() - held.renewedSentAt;
    if (age < this.leaseMs - this.safetyMarginMs) return undefined;
    const error = new LeaseLostError(
      this.owner,
      `could not renew for ${Math.round(age)} ms, past the limit of ${this.leaseMs - this.safetyMarginMs} ms ` +
        `(lease ${this.leaseMs} ms minus safety margin ${this.safetyMarginMs} ms); a standby may take over now`,
    );
    this.end(held, error);
    return error;
  }

  private scheduleExpiry(): void {
    this.clearTimer();
    const held = this.held;
    if (!held) return;
    const remaining = this.validUntil(held) - this.clock.monotonic();
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

function call(callback: () => void): void {
  try {
    callback();
  } catch {
    /* documented: callbacks must not throw */
  }
}
