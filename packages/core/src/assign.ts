import { ConfigError } from "./errors.ts";
import { freeSlot, sameSlot, type Slot, type Target } from "./model.ts";
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

/**
 * The server's reconcile, in three passes (as the HAProxy ingress controller
 * does): keep every target that holds a slot where it is, drain the ones
 * leaving, then give new ready targets the lowest free slots in launch order.
 * A live target never changes slot: the only way out of a slot is
 * ready -> drain -> free.
 */
export function assignSlots(prev: readonly Slot[], targets: readonly Target[], now: number, cfg: AssignConfig): AssignResult {
  const before = normalizeSlots(prev, cfg.size);
  const byId = new Map<string, Target>();
  for (const t of targets) if (!byId.has(t.id)) byId.set(t.id, t);

  const holding = new Set<string>();
  const drained: Slot[] = [];
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
      return { slot: slot.slot, state: "ready", ...placed(target), weight: cfg.weight.min, since: now };
    }
    if (slot.state === "ready") {
      if (cfg.drainMs <= 0) {
        drained.push(slot);
        return freeSlot(slot.slot);
      }
      const { generation: _g, epoch: _e, ...rest } = slot;
      return { ...rest, state: "drain", drainUntil: now + cfg.drainMs };
    }
    // A `drainUntil` from a leader whose clock ran ahead is capped to a full drain from now.
    if (slot.drainUntil !== undefined && slot.drainUntil > now + cfg.drainMs) return { ...slot, drainUntil: now + cfg.drainMs };
    if (slot.drainUntil === undefined || now >= slot.drainUntil) {
      drained.push(slot);
      return freeSlot(slot.slot);
    }
    return slot;
  });

  const newcomers = [...byId.values()].filter((t) => t.health === "ready" && !holding.has(t.id)).sort(byLaunch);
  const unassigned: Target[] = [];
  let cursor = 0;
  for (const target of newcomers) {
    while (cursor < slots.length && slots[cursor]!.state !== "free") cursor++;
    if (cursor >= slots.length) {
      unassigned.push(target);
      continue;
    }
    slots[cursor] = { slot: cursor + 1, state: "ready", ...placed(target), weight: rampWeight(now, now, cfg.weight), since: now };
  }

  const changed = slots.filter((s, i) => !sameSlot(s, before[i]!));
  return { slots, changed, unassigned, drained };
}
