import type { ServerTickResult } from "@hsdo/server";
import type { ClientTickResult } from "@hsdo/client";
import type { Slot } from "@hsdo/core";
import type { Metrics } from "./metrics.ts";

/**
 * HSDO's hsdo_server_weight, as HSDO set it: one series per occupied slot
 * (id: the slot, HSDO's BackendServerID; name: the target, HSDO's
 * ServerName; ip; asg: its group), rebuilt from every tick's slots so the
 * series of a slot that went free is gone, as HSDO removed it.
 */
function recordHsdoWeights(metrics: Metrics, slots: readonly Slot[]): void {
  metrics.hsdoServerWeight.reset();
  for (const s of slots) {
    if (s.state === "free" || s.addr === undefined) continue;
    metrics.hsdoServerWeight.set({ id: String(s.slot), name: s.name ?? "", ip: s.addr, asg: s.group ?? "" }, s.weight);
  }
}

/**
 * What one tick of each loop leaves in the metrics (README "Metrics"): the
 * composition root hands these to the loops' onTick hooks.
 */
export function recordServerTick(metrics: Metrics, pool: string, sourceName: string, r: ServerTickResult): void {
  if (r.durationMs !== undefined) metrics.tickDuration.observe({ role: "server" }, r.durationMs / 1000);
  if (r.sourceError) metrics.sourceErrors.inc({ source: sourceName });
  if (r.targets) {
    metrics.sourceTargets.reset();
    for (const health of ["ready", "pending", "leaving"] as const) {
      metrics.sourceTargets.set({ source: sourceName, health }, r.targets.filter((t) => t.health === health).length);
    }
  }
  if (r.slots) {
    for (const state of ["free", "ready", "drain"] as const) metrics.slots.set({ pool, state }, r.slots.filter((s) => s.state === state).length);
    metrics.slotWeight.reset();
    for (const s of r.slots) if (s.state !== "free") metrics.slotWeight.set({ pool, slot: String(s.slot) }, s.weight);
    recordHsdoWeights(metrics, r.slots);
  }
  if (r.generation !== undefined) metrics.generation.set({ pool, role: "server" }, r.generation);
  metrics.unassigned.set({ pool }, r.unassigned.length);
  if (r.quarantined) metrics.quarantined.set({ pool }, r.quarantined.length);
  if (r.valveHolding) metrics.valveHeld.inc({ pool });
  if (r.published && r.role === "leader") metrics.publications.inc({ pool });
  if (r.released.length) metrics.lifecycleCompletions.inc({ outcome: "ok" }, r.released.length);
  if (r.releaseFailures) metrics.lifecycleCompletions.inc({ outcome: "failed" }, r.releaseFailures);
  if (r.error) metrics.tickErrors.inc({ role: "server" });
}

export function recordClientTick(metrics: Metrics, r: ClientTickResult): void {
  metrics.tickDuration.observe({ role: "client" }, r.durationMs / 1000);
  if (r.runtimeError) metrics.tickErrors.inc({ role: "client" });
  for (const p of r.pools) {
    // Items the reader refused, and slots whose address can never be a target: both kept in maint.
    const refused = r.reconcile?.refused?.filter((x) => x.pool === p.pool).length ?? 0;
    metrics.invalidSlots.set({ pool: p.pool }, p.invalid + refused);
    if (p.generation !== undefined) metrics.generation.set({ pool: p.pool, role: "client" }, p.generation);
  }
  if (r.runtimeError) metrics.runtimeErrors.inc({ kind: "exchange" });
  if (r.reconcile) metrics.reconcileProblems.set(r.reconcile.problems.length);
  recordHsdoWeights(metrics, r.slots);
}
