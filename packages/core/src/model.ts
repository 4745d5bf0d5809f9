/**
 * The domain, as plain data. A Target is what a source lists; a Slot is one
 * numbered position of a pool, as stored in the table and applied to HAProxy
 * as server `<prefix><slot>`.
 */

/** What the source says of a target, already classified (docs/ARCHITECTURE.md, "Server: from targets to slots"). */
export type TargetHealth = "ready" | "pending" | "leaving";

export interface Target {
  /** Stable identity: EC2 instance id, `node:serviceId` for Consul, the name for static targets. */
  id: string;
  addr: string;
  /** The target's own port; undefined when the source has none (ASG instances). */
  port?: number;
  group: string;
  az: string;
  /** Sort key for new targets (ms since epoch); ties broken by id. */
  launchedAt: number;
  health: TargetHealth;
  /** ASG lifecycle: this instance waits in Terminating:Wait for our hook. */
  lifecycleHook?: string;
}

export type SlotState = "free" | "ready" | "drain";

export interface Slot {
  /** 1-based slot number: HAProxy server `<prefix><slot>`, id `slot`. */
  slot: number;
  state: SlotState;
  addr?: string;
  port?: number;
  /** The target's id (instance id, node); absent when free. */
  name?: string;
  group?: string;
  az?: string;
  weight: number;
  /** When the target became ready in this slot (ms since epoch): the ramp's origin. */
  since?: number;
  /** End of the drain (ms since epoch), when state is `drain`. */
  drainUntil?: number;
  /** Generation of the publication that last wrote this slot. */
  generation?: number;
  /** Epoch of the leader that last wrote this slot. */
  epoch?: number;
  /**
   * Slot memory, on free slots only: the id of the last target that held
   * the slot. A target that comes back while its old slot is still free
   * takes it again before any newcomer, so an outage rebuilds no ring.
   */
  last?: string;
}

export interface Head {
  generation: number;
  epoch: number;
  leader: string;
  updatedAt: number;
  size: number;
}

/** A pool as read from the table: the head, then exactly `head.size` slots in order. */
export interface Snapshot {
  pool: string;
  head: Head;
  slots: Slot[];
  /** Slot numbers whose item failed validation; they are `maint` everywhere. */
  invalid: InvalidSlot[];
}

export interface InvalidSlot {
  slot: number;
  problems: string[];
  /**
   * What still identifies the item's target, each only when it passes its
   * own check (isSafeName, isIpLiteral): the server repairs or frees a
   * quarantined slot by these (docs/ARCHITECTURE.md, "Quarantine").
   */
  name?: string;
  addr?: string;
  /** The item's `state`, when it is one of the known states. */
  state?: SlotState;
}

export function freeSlot(slot: number): Slot {
  return { slot, state: "free", weight: 0 };
}

/** A target occupies a slot when the slot is ready or draining. */
export function isOccupied(slot: Slot): boolean {
  return slot.state !== "free";
}

/** The fields that, when different, make a slot worth republishing. */
export function sameSlot(a: Slot, b: Slot): boolean {
  return (
    a.slot === b.slot &&
    a.state === b.state &&
    a.addr === b.addr &&
    a.port === b.port &&
    a.name === b.name &&
    a.group === b.group &&
    a.az === b.az &&
    a.weight === b.weight &&
    a.since === b.since &&
    a.drainUntil === b.drainUntil &&
    a.last === b.last
  );
}
