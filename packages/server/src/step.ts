import { assignSlots, safetyValve, type AssignResult, type InvalidSlot, type Slot, type Target, type ValveState, type WeightConfig } from "@hsdo/core";

export interface SlotPolicy {
  size: number;
  weight: WeightConfig;
  drainMs: number;
  maxRemovalFraction: number;
  confirmTicks: number;
}

export interface StepInput {
  /** The slots as last published (or read from the table at takeover). */
  slots: readonly Slot[];
  /** The source's complete answer this tick. */
  targets: readonly Target[];
  /** The last answer the safety valve let through; used while a new one is held. */
  accepted: readonly Target[] | undefined;
  valve: ValveState;
  now: number;
  cfg: SlotPolicy;
  /** Slots whose table item failed validation and is not settled yet: occupied, never a newcomer's. */
  quarantine?: readonly InvalidSlot[];
}

export interface StepResult {
  slots: Slot[];
  changed: Slot[];
  unassigned: Target[];
  drained: Slot[];
  gone: Slot[];
  returned: Slot[];
  repaired: AssignResult["repaired"];
  quarantined: InvalidSlot[];
  /** True when the valve held this answer back. */
  valveHolding: boolean;
  live: number;
  removing: number;
  valve: ValveState;
  accepted: readonly Target[];
  /** Targets waiting on our lifecycle hook that hold no slot any more: safe to let go. */
  releasable: Target[];
}

/**
 * One server tick as a pure function: the safety valve decides which answer
 * counts, assignment turns it into slots. The caller publishes `changed`
 * and completes the lifecycle actions of `releasable`.
 */
export function serverStep(input: StepInput): StepResult {
  const decision = safetyValve(input.slots, input.targets, input.valve, input.cfg);
  const effective = decision.accept ? input.targets : (input.accepted ?? input.slots.flatMap(stillHeldTarget));
  // A held answer settles no quarantined slot: the stand-in answer cannot say whose a slot is.
  const r = assignSlots(input.slots, effective, input.now, input.cfg, { quarantine: input.quarantine ?? [], settle: decision.accept });
  const occupied = new Set(r.slots.filter((s) => s.state !== "free").map((s) => s.name));
  const releasable = input.targets.filter((t) => t.lifecycleHook !== undefined && t.health === "leaving" && !occupied.has(t.id));
  return {
    ...r,
    valveHolding: !decision.accept,
    live: decision.live,
    removing: decision.removing,
    valve: decision.state,
    accepted: effective,
    releasable,
  };
}

/** What a slot says of its target, to stand in for an answer when none was accepted yet (after a takeover). */
function stillHeldTarget(slot: Slot): Target[] {
  if (slot.state !== "ready" || !slot.name || !slot.addr) return [];
  const t: Target = { id: slot.name, addr: slot.addr, group: slot.group ?? "", az: slot.az ?? "", launchedAt: slot.since ?? 0, health: "ready" };
  if (slot.port !== undefined) t.port = slot.port;
  return [t];
}
