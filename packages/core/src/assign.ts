import { ConfigError } from "./errors.ts";
import { freeSlot, sameSlot, type InvalidSlot, type Slot, type Target } from "./model.ts";
import { rampWeight, sinceForWeight } from "./ramp.ts";
import type { WeightConfig } from "./config/types.ts";

export interface AssignConfig {
  size: number;
  weight: WeightConfig;
  drainMs: number;
}

export interface AssignResult {
  /** Slots 1..size, in order. */
  slots: Slot[];
  /** The slots that differ from the previous ones: what must be published. */
  changed: Slot[];
  /** Ready targets that found no free slot; they wait, nobody is evicted. */
  unassigned: Target[];
  /** Slots whose drain ended this tick (the target they held, before being freed). */
  drained: Slot[];
  /** Slots whose target is gone from the source: freed (maint) this tick, given to no newcomer before the next. */
  gone: Slot[];
  /** Targets that took back the free slot they last held. */
  returned: Slot[];
  /** Quarantined slots settled this tick: rewritten for their live target, or freed. */
  repaired: { slot: Slot; problems: string[]; how: "repaired" | "freed" }[];
  /** Quarantined slots still unreadable and unidentified: occupied, assignable to nobody. */
  quarantined: InvalidSlot[];
}

export interface AssignOptions {
  /** Slots whose item failed validation (Snapshot.invalid): never free, never given to a newcomer. */
  quarantine?: readonly InvalidSlot[];
  /**
   * Whether this answer may settle quarantined slots (default true). False
   * when the safety valve held the answer: a stand-in answer must not free a
   * slot nobody can read.
   */
  settle?: boolean;
}

/** Sort key for new targets: launch time, then id, so every run picks the same order. */
export function byLaunch(a: Target, b: Target): number {
  return a.launchedAt - b.launchedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Slots 1..size from the previous ones: pads with free slots, and refuses a
 * size that would cut off an occupied slot (that would move or drop a live
 * target, which the invariant forbids).
 */
export function normalizeSlots(prev: readonly Slot[], size: number): Slot[] {
  const bySlot = new Map(prev.map((s) => [s.slot, s]));
  for (const s of prev) {
    if (s.slot > size && s.state !== "free") {
      throw new ConfigError(
        "size",
        size,
        `is below slot ${s.slot}, which holds ${s.name ?? "a target"} (${s.state}); raise size to at least ${s.slot} or wait until that slot is free`,
      );
    }
  }
  return Array.from({ length: size }, (_, i) => bySlot.get(i + 1) ?? freeSlot(i + 1));
}

function placed(target: Target): Pick<Slot, "addr" | "port" | "name" | "group" | "az"> {
  const out: Pick<Slot, "addr" | "port" | "name" | "group" | "az"> = { addr: target.addr, name: target.id };
  if (target.port !== undefined) out.port = target.port;
  if (target.group) out.group = target.group;
  if (target.az) out.az = target.az;
  return out;
}

/** A free slot that remembers `id` as its last occupant. */
function freedFrom(slot: number, id: string | undefined): Slot {
  const out = freeSlot(slot);
  if (id !== undefined) out.last = id;
  return out;
}

/**
 * The server's reconcile (docs/ARCHITECTURE.md, "Server: from targets to
 * slots"), in passes:
 *
 * 1. Every target that holds a slot keeps it. One still listed but leaving
 *    (or pending) drains; one gone from the answer goes to free (`maint` on
 *    every client) at once, and that slot is given to no newcomer before
 *    the next generation. A draining slot drains to its end either way.
 * 2. Quarantined slots (items that failed validation) are settled when the
 *    answer identifies their target: rewritten for it when it is ready and
 *    holds no other slot, freed when it is gone or not ready; otherwise they
 *    stay occupied.
 * 3. Ready targets that hold no slot take back the free slot that remembers
 *    them (`last`), before any newcomer.
 * 4. The other ready targets take the lowest free slots in launch order.
 *
 * A live target never changes slot, and no target holds two.
 */
export function assignSlots(
  prev: readonly Slot[],
  targets: readonly Target[],
  now: number,
  cfg: AssignConfig,
  options: AssignOptions = {},
): AssignResult {
  const before = normalizeSlots(prev, cfg.size);
  const byId = new Map<string, Target>();
  for (const t of targets) if (!byId.has(t.id)) byId.set(t.id, t);
  const fresh = (slot: number, target: Target): Slot => ({
    slot,
    state: "ready",
    ...placed(target),
    weight: rampWeight(now, now, cfg.weight),
    since: now,
  });

  const holding = new Set<string>();
  const drained: Slot[] = [];
  const gone: Slot[] = [];
  /** Slot numbers no newcomer may take this tick. */
  const closed = new Set<number>();
  const slots = before.map((slot): Slot => {
    if (slot.state === "free" || slot.name === undefined) return slot.state === "free" ? slot : freeSlot(slot.slot);
    holding.add(slot.name);
    const target = byId.get(slot.name);
    if (target?.health === "ready") {
      if (slot.state === "ready") {
        // Written by another leader's wall clock: a `since` in the future would drop the weight back to min.
        const since = slot.since === undefined ? now : slot.since > now ? sinceForWeight(slot.weight, now, cfg.weight) : slot.since;
        return { slot: slot.slot, state: "ready", ...placed(target), weight: rampWeight(since, now, cfg.weight), since };
      }
      // Back from drain (e.g. Unhealthy then Healthy again): same slot, ramp again.
      return fresh(slot.slot, target);
    }
    if (slot.state === "ready") {
      if (target === undefined) {
        // Gone from the source: nothing left to drain. `maint` for one generation, then free for anyone.
        gone.push(slot);
        closed.add(slot.slot);
        return freedFrom(slot.slot, slot.name);
      }
      if (cfg.drainMs <= 0) {
        drained.push(slot);
        return freedFrom(slot.slot, slot.name);
      }
      const { generation: _g, epoch: _e, ...rest } = slot;
      return { ...rest, state: "drain", drainUntil: now + cfg.drainMs };
    }
    // A `drainUntil` from a leader whose clock ran ahead is capped to a full drain from now.
    if (slot.drainUntil !== undefined && slot.drainUntil > now + cfg.drainMs) return { ...slot, drainUntil: now + cfg.drainMs };
    if (slot.drainUntil === undefined || now >= slot.drainUntil) {
      drained.push(slot);
      return freedFrom(slot.slot, slot.name);
    }
    return slot;
  });

  // Quarantine: an item nobody can read is occupied until the answer says whose it is.
  const byAddr = new Map<string, Target>();
  for (const t of byId.values()) if (t.addr && !byAddr.has(t.addr)) byAddr.set(t.addr, t);
  const repaired: AssignResult["repaired"] = [];
  const quarantined: InvalidSlot[] = [];
  const forced = new Set<number>();
  const settle = options.settle ?? true;
  for (const bad of [...(options.quarantine ?? [])].sort((a, b) => a.slot - b.slot)) {
    if (bad.slot < 1 || bad.slot > slots.length) continue;
    const target = (bad.name !== undefined ? byId.get(bad.name) : undefined) ?? (bad.addr !== undefined ? byAddr.get(bad.addr) : undefined);
    const identified = bad.name !== undefined || bad.addr !== undefined;
    const k = bad.slot - 1;
    closed.add(bad.slot);
    if (!settle || (!identified && bad.state !== "free")) {
      quarantined.push(bad);
      continue;
    }
    forced.add(bad.slot);
    if (target?.health === "ready" && !holding.has(target.id)) {
      holding.add(target.id);
      slots[k] = fresh(bad.slot, target);
      repaired.push({ slot: slots[k]!, problems: bad.problems, how: "repaired" });
    } else {
      // Gone, not ready, or already in another slot: free, remembering whose it was.
      const last = target?.id ?? bad.name;
      slots[k] = freedFrom(bad.slot, last !== undefined && (target === undefined || !holding.has(target.id)) ? last : undefined);
      repaired.push({ slot: slots[k]!, problems: bad.problems, how: "freed" });
    }
  }

  // Slot memory: a target back while its old slot is still free takes it before any newcomer.
  const returned: Slot[] = [];
  for (let k = 0; k < slots.length; k++) {
    const slot = slots[k]!;
    if (slot.state !== "free" || slot.last === undefined || closed.has(slot.slot)) continue;
    const target = byId.get(slot.last);
    if (target?.health !== "ready" || holding.has(target.id)) continue;
    holding.add(target.id);
    slots[k] = fresh(slot.slot, target);
    returned.push(slots[k]!);
  }

  const newcomers = [...byId.values()].filter((t) => t.health === "ready" && !holding.has(t.id)).sort(byLaunch);
  const unassigned: Target[] = [];
  let cursor = 0;
  for (const target of newcomers) {
    while (cursor < slots.length && (slots[cursor]!.state !== "free" || closed.has(cursor + 1))) cursor++;
    if (cursor >= slots.length) {
      unassigned.push(target);
      continue;
    }
    slots[cursor] = fresh(cursor + 1, target);
  }

  // A settled quarantined slot is rewritten even when it equals what the reader made of it (free).
  const changed = slots.filter((s, i) => forced.has(s.slot) || !sameSlot(s, before[i]!));
  return { slots, changed, unassigned, drained, gone, returned, repaired, quarantined };
}
