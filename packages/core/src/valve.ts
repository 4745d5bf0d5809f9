import type { Slot, Target } from "./model.ts";

/**
 * The safety valve: a source answer that would take away more than
 * `maxRemovalFraction` of the live targets at once (an API hiccup, an empty
 * page, a wrong filter) is held, and the last accepted answer is used
 * instead, until the same answer has been seen `confirmTicks` times in a row.
 */
export interface ValveConfig {
  maxRemovalFraction: number;
  confirmTicks: number;
}

export interface ValveState {
  /** Identity of the answer being held, and how many ticks in a row it was seen. */
  held?: { key: string; seen: number };
}

export interface ValveDecision {
  accept: boolean;
  state: ValveState;
  live: number;
  removing: number;
}

function answerKey(targets: readonly Target[]): string {
  return targets
    .filter((t) => t.health === "ready")
    .map((t) => t.id)
    .sort()
    .join(",");
}

export function safetyValve(slots: readonly Slot[], targets: readonly Target[], state: ValveState, cfg: ValveConfig): ValveDecision {
  const ready = new Set(targets.filter((t) => t.health === "ready").map((t) => t.id));
  const live = slots.filter((s) => s.state === "ready" && s.name !== undefined);
  const removing = live.filter((s) => !ready.has(s.name!)).length;
  if (live.length === 0 || removing / live.length <= cfg.maxRemovalFraction) {
    return { accept: true, state: {}, live: live.length, removing };
  }
  const key = answerKey(targets);
  const seen = state.held?.key === key ? state.held.seen + 1 : 1;
  if (seen >= cfg.confirmTicks) return { accept: true, state: {}, live: live.length, removing };
  return { accept: false, state: { held: { key, seen } }, live: live.length, removing };
}
