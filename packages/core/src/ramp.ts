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

/**
 * The ramp origin that gives `weight` at `now`: used when a stored `since`
 * lies in the future (written by a leader whose clock ran ahead), so the
 * weight carries on from where it is instead of dropping back to `min`.
 */
export function sinceForWeight(weight: number, now: number, w: WeightConfig): number {
  if (w.intervalMs <= 0 || weight <= w.min) return now;
  return now - Math.ceil((Math.min(weight, w.max) - w.min) / w.step) * w.intervalMs;
}
