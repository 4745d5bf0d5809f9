/**
 * The lease's decisions as a pure state machine: plain data in, plain data
 * out, no I/O and no clock of its own (docs/ARCHITECTURE.md, "Leader
 * election"). LeaseKeeper (lease.ts) is the DynamoDB adapter around it: it
 * reads and writes the lease item as the machine says and feeds back what it
 * saw and how each write ended. The same functions drive the contenders of
 * the property test (lease-machine.test.ts), against an in-memory register
 * with DynamoDB's semantics.
 *
 * Every `now` is the contender's own monotonic clock, in ms. Wall clocks of
 * different contenders are never compared; what the argument needs is that
 * monotonic clock *rates* differ by a bounded amount (see mayWrite).
 */

/** The lease item as read (consistent read). */
export interface LeaseSeen {
  readonly owner: string;
  readonly epoch: number;
  readonly rvn: string;
  readonly leaseMs: number;
  readonly released?: boolean;
}

export interface MachineConfig {
  readonly owner: string;
  readonly leaseMs: number;
  readonly safetyMarginMs: number;
}

/** A take (or raise) whose answer never came, or came as a failed condition (the SDK's retry of a write that landed): the next read tells. */
export interface Pending {
  readonly rvn: string;
  readonly epoch: number;
  readonly sentAt: number;
}

export type LeaseState =
  | {
      readonly role: "standby";
      /** The highest epoch this contender has seen anywhere (lease items, the head, fenced-out evidence): its next term is above it. */
      readonly floor: number;
      /** The rvn being watched and when (after the read that first showed it returned) it was first seen. */
      readonly watched?: { readonly rvn: string; readonly since: number };
      readonly pending: readonly Pending[];
    }
  | {
      readonly role: "leader";
      readonly floor: number;
      readonly epoch: number;
      /** Send time of the last lease write that succeeded: the term's validity counts from here. */
      readonly renewedAt: number;
      readonly pending: readonly Pending[];
    };

export type Condition =
  | { readonly kind: "absent" }
  | { readonly kind: "rvn"; readonly rvn: string }
  /** owner and epoch: only the current holder's write lands. */
  | { readonly kind: "term"; readonly owner: string; readonly epoch: number };

export interface LeaseWrite {
  /** take: a new term (PutItem). heartbeat: same term, new rvn. raise: a new term above `floor`, from our own current term. release: give it up. */
  readonly kind: "take" | "heartbeat" | "raise" | "release";
  readonly condition: Condition;
  /** The item after the write (release also sets released). */
  readonly owner: string;
  readonly epoch: number;
  readonly rvn: string;
  readonly leaseMs: number;
  readonly sentAt: number;
}

/** How a write ended: it landed and said so; its condition failed (it did not land, or it is the SDK's retry of one that did); or no answer (it may have landed). */
export type WriteOutcome = "ok" | "conditionFailed" | "lost";

export const initialState: LeaseState = { role: "standby", floor: 0, pending: [] };

/** What the term may still do: its data writes are allowed while now < validUntil. */
export function validUntil(cfg: MachineConfig, state: LeaseState): number | undefined {
  return state.role === "leader" ? state.renewedAt + cfg.leaseMs - cfg.safetyMarginMs : undefined;
}

/**
 * Whether the contender may write data (fenced writes) at `now`: it leads
 * and less than leaseMs - safetyMarginMs have passed on its monotonic clock
 * since the send time of its last successful lease write.
 *
 * Why no other contender can lead at the same real instant: a standby takes
 * only after it saw one rvn unchanged for leaseMs on its clock, counted from
 * after a read that returned that rvn, hence after the holder's last write
 * landed, hence after it was sent. If every contender's monotonic clock runs
 * at a rate within [1 - rho, 1 + rho] of real time, the holder stops by real
 * time sentAt + (leaseMs - margin) / (1 - rho) and the standby cannot take
 * before sentAt + leaseMs / (1 + rho). So margin >= leaseMs * 2rho / (1 + rho)
 * is enough: the default margin of leaseMs / 5 tolerates rho up to 1/9.
 */
export function mayWrite(cfg: MachineConfig, state: LeaseState, now: number): boolean {
  const until = validUntil(cfg, state);
  return until !== undefined && now < until;
}

export type TickDecision =
  /** A standby reads the lease item (consistent) and calls observe. */
  | { readonly kind: "read" }
  /** The holder's term ran out before it could renew: it has stopped. */
  | { readonly kind: "stepDown"; readonly epoch: number; readonly ageMs: number }
  /** The holder writes (heartbeat, or raise when fenced out), then calls answered. */
  | { readonly kind: "write"; readonly write: LeaseWrite };

/** Ends a leader's term whose validity has run out; returns the state unchanged otherwise. */
export function expire(cfg: MachineConfig, state: LeaseState, now: number): { state: LeaseState; expired?: { epoch: number; ageMs: number } } {
  if (state.role !== "leader" || mayWrite(cfg, state, now)) return { state };
  return { state: standby(state.floor, [], undefined), expired: { epoch: state.epoch, ageMs: now - state.renewedAt } };
}

/** One step. `freshRvn` is a new record version the write uses if there is one. */
export function tick(cfg: MachineConfig, state: LeaseState, now: number, freshRvn: string): { state: LeaseState; decision: TickDecision } {
  const e = expire(cfg, state, now);
  if (e.expired) return { state: e.state, decision: { kind: "stepDown", ...e.expired } };
  if (state.role === "standby") return { state, decision: { kind: "read" } };
  const term: Condition = { kind: "term", owner: cfg.owner, epoch: state.epoch };
  const write: LeaseWrite =
    state.floor > state.epoch
      ? // Fenced out: data carries an epoch above ours. Still the lease's holder, take a term above it.
        { kind: "raise", condition: term, owner: cfg.owner, epoch: state.floor + 1, rvn: freshRvn, leaseMs: cfg.leaseMs, sentAt: now }
      : { kind: "heartbeat", condition: term, owner: cfg.owner, epoch: state.epoch, rvn: freshRvn, leaseMs: cfg.leaseMs, sentAt: now };
  return { state, decision: { kind: "write", write } };
}

export type ObserveDecision =
  /** Lease item absent: read the head's epoch too and observe again with it. */
  | { readonly kind: "readHead" }
  /** A pending take of ours is on the item: we lead (validity from its send time). */
  | { readonly kind: "lead"; readonly epoch: number }
  | { readonly kind: "write"; readonly write: LeaseWrite }
  | { readonly kind: "wait"; readonly holder: LeaseSeen; readonly unchangedForMs: number };

/**
 * A standby's read of the lease item. `headEpoch` is the head's stored epoch,
 * given when the lease item is absent (a new table, a deleted item): the new
 * term must be above it or the fence would refuse every write.
 */
export function observe(
  cfg: MachineConfig,
  state: LeaseState,
  seen: { lease: LeaseSeen | undefined; headEpoch?: number },
  now: number,
  freshRvn: string,
): { state: LeaseState; decision: ObserveDecision } {
  if (state.role !== "standby") throw new Error("lease machine: observe() is a standby's step (bug)");
  const { lease } = seen;
  if (!lease) {
    if (seen.headEpoch === undefined) return { state, decision: { kind: "readHead" } };
    const floor = Math.max(state.floor, seen.headEpoch);
    return take(cfg, standby(floor, [], undefined), { kind: "absent" }, now, freshRvn);
  }
  const floor = Math.max(state.floor, lease.epoch);
  const mine = lease.owner === cfg.owner ? state.pending.find((p) => p.rvn === lease.rvn && p.epoch === lease.epoch) : undefined;
  if (mine && now - mine.sentAt < cfg.leaseMs - cfg.safetyMarginMs) {
    return { state: { role: "leader", floor, epoch: mine.epoch, renewedAt: mine.sentAt, pending: [] }, decision: { kind: "lead", epoch: mine.epoch } };
  }
  // Released by someone else: free at once. Released by us: others get the usual chance first.
  if (lease.released && lease.owner !== cfg.owner) return take(cfg, standby(floor, [], undefined), { kind: "rvn", rvn: lease.rvn }, now, freshRvn);
  const watched = state.watched?.rvn === lease.rvn ? state.watched : { rvn: lease.rvn, since: now };
  const unchangedForMs = now - watched.since;
  if (unchangedForMs >= Math.max(lease.leaseMs, cfg.leaseMs)) return take(cfg, standby(floor, [], watched), { kind: "rvn", rvn: lease.rvn }, now, freshRvn);
  return { state: standby(floor, [], watched), decision: { kind: "wait", holder: lease, unchangedForMs } };
}

function take(cfg: MachineConfig, state: LeaseState & { role: "standby" }, condition: Condition, now: number, rvn: string) {
  const write: LeaseWrite = { kind: "take", condition, owner: cfg.owner, epoch: state.floor + 1, rvn, leaseMs: cfg.leaseMs, sentAt: now };
  return { state: state as LeaseState, decision: { kind: "write", write } as ObserveDecision };
}

export type AnswerEvent =
  /** A take or raise landed: a term at write.epoch begins (a raise ends the previous one). */
  | { readonly kind: "began"; readonly epoch: number; readonly ended?: number }
  | { readonly kind: "renewed" }
  /** The condition failed on our own term's write: deposed (or our own retried raise: the next read tells). */
  | { readonly kind: "deposed"; readonly epoch: number }
  /** A take lost the race (or is our own retried take: the next read tells). */
  | { readonly kind: "notTaken" }
  /** Answered too late: the term's validity ran out meanwhile, or a take's answer came after leaseMs - margin. */
  | { readonly kind: "tooLate"; readonly ended?: number }
  /** No answer: a take or raise may have landed (pending); a heartbeat simply did not renew. */
  | { readonly kind: "noAnswer" }
  | { readonly kind: "ignored" };

/** Feeds back how a write ended. `now` is when the answer arrived. */
export function answered(cfg: MachineConfig, state: LeaseState, write: LeaseWrite, outcome: WriteOutcome, now: number): { state: LeaseState; event: AnswerEvent } {
  const limit = cfg.leaseMs - cfg.safetyMarginMs;
  const floor = Math.max(state.floor, write.epoch);
  const pending = [...state.pending, { rvn: write.rvn, epoch: write.epoch, sentAt: write.sentAt }].slice(-4);
  const current = state.role === "leader" && write.condition.kind === "term" && write.condition.epoch === state.epoch;
  switch (write.kind) {
    case "release":
      return { state, event: { kind: "ignored" } };
    case "heartbeat": {
      if (!current) return { state, event: { kind: "ignored" } };
      const e = expire(cfg, state, now);
      if (e.expired) return { state: e.state, event: { kind: "tooLate", ended: e.expired.epoch } };
      if (outcome === "lost") return { state, event: { kind: "noAnswer" } };
      if (outcome === "conditionFailed") return { state: standby(state.floor, [], undefined), event: { kind: "deposed", epoch: state.epoch } };
      return { state: { ...state, renewedAt: Math.max(state.renewedAt, write.sentAt) }, event: { kind: "renewed" } };
    }
    case "raise": {
      if (!current) return { state, event: { kind: "ignored" } };
      if (outcome === "ok" && now - write.sentAt < limit) {
        return { state: { role: "leader", floor, epoch: write.epoch, renewedAt: write.sentAt, pending: [] }, event: { kind: "began", epoch: write.epoch, ended: state.epoch } };
      }
      const e = expire(cfg, state, now);
      if (e.expired) return { state: { ...e.state, pending }, event: { kind: "tooLate", ended: e.expired.epoch } };
      // Landed too late for a term, or failed (maybe our own retry): the old term cannot go on either way.
      if (outcome !== "lost") return { state: standby(state.floor, pending, undefined), event: { kind: "deposed", epoch: state.epoch } };
      // No answer: still the old term (it may renew or raise again); the next read also recognises this one.
      return { state: { ...state, pending }, event: { kind: "noAnswer" } };
    }
    case "take": {
      if (state.role !== "standby") return { state, event: { kind: "ignored" } };
      if (outcome === "ok") {
        if (now - write.sentAt >= limit) return { state: standby(floor, [], undefined), event: { kind: "tooLate" } };
        return { state: { role: "leader", floor, epoch: write.epoch, renewedAt: write.sentAt, pending: [] }, event: { kind: "began", epoch: write.epoch } };
      }
      // The item changed under us (or it is our own landed take, retried): watch afresh; the next read tells.
      return { state: standby(state.floor, pending, undefined), event: { kind: outcome === "lost" ? "noAnswer" : "notTaken" } };
    }
  }
}

/**
 * Evidence from a refused data write: the stored epoch of a head or slot is
 * above the term's (a restore, an item written by hand, a deleted lease
 * item). The next tick raises: a term above it, taken from our own.
 * `storedEpoch` undefined: above ours, by how much unknown.
 */
export function fencedOut(state: LeaseState, termEpoch: number, storedEpoch: number | undefined): LeaseState {
  if (state.role !== "leader" || state.epoch !== termEpoch) return state;
  const above = storedEpoch !== undefined && storedEpoch > termEpoch ? storedEpoch : termEpoch + 1;
  return { ...state, floor: Math.max(state.floor, above) };
}

/** Graceful step-down: the term ends now, before the write that marks the lease released. */
export function release(cfg: MachineConfig, state: LeaseState, now: number, freshRvn: string): { state: LeaseState; write?: LeaseWrite } {
  if (state.role !== "leader") return { state };
  const write: LeaseWrite = {
    kind: "release",
    condition: { kind: "term", owner: cfg.owner, epoch: state.epoch },
    owner: cfg.owner,
    epoch: state.epoch,
    rvn: freshRvn,
    leaseMs: cfg.leaseMs,
    sentAt: now,
  };
  return { state: standby(state.floor, [], undefined), write };
}

function standby(floor: number, pending: readonly Pending[], watched: { rvn: string; since: number } | undefined): LeaseState & { role: "standby" } {
  return watched ? { role: "standby", floor, watched, pending } : { role: "standby", floor, pending };
}
