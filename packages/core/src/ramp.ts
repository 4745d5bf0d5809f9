import type { WeightConfig } from "./config/types.ts";

/**
 * HSDO's ramp: a target starts at `min` and gains `step` every `interval`
 * until `max`. A function of (since, now) only, so any server (a new leader
 * included) computes the same weight from the stored `since`.
 */
export function rampWeight(since: number, now: number, w: WeightConfig): number {
  if (w.intervalMs <= 0 || w.min >= w.max) return w.max;
  const steps = Math.floor(Math.max(0, now - since) / w.intervalMs);
  return Math.min(w.max, w.min + steps * w.step);
}

/** When the weight changes next (ms since epoch), or undefined once at `max`. */
export function nextRampAt(since: number, now: number, w: WeightConfig): number | undefined {
  if (rampWeight(since, now, w) >= w.max) return undefined;
  const steps = Math.floor(Math.max(0, now - since) / w.intervalMs) + 1;
  return since + steps * w.intervalMs;
}
