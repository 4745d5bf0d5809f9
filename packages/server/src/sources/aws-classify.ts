import type { TargetHealth } from "@hsdo/core";

/**
 * How an Auto Scaling instance counts for hsdo (docs/ARCHITECTURE.md, "Server: from targets to slots"). Any
 * state on the way out of service drains; only InService and Healthy with a
 * known private IP is ready. States that are neither (warm pool, quarantine,
 * states AWS adds later) are `pending`: never given a new slot, and not
 * drained on a guess either.
 */
export function classifyInstance(lifecycleState: string, healthStatus: string, hasIp: boolean): TargetHealth {
  if (isLeaving(lifecycleState) || healthStatus === "Unhealthy") return "leaving";
  if (lifecycleState === "InService" && healthStatus === "Healthy" && hasIp) return "ready";
  return "pending";
}

const LEAVING = /^(Terminating|Terminated|Detaching|Detached|EnteringStandby|Standby|ReplacingRootVolume|RootVolumeReplaced)(:|$)/;

function isLeaving(lifecycleState: string): boolean {
  return LEAVING.test(lifecycleState);
}

/** The instance waits for a lifecycle hook to be completed before it terminates. */
export function waitsForHook(lifecycleState: string): boolean {
  return lifecycleState === "Terminating:Wait";
}
