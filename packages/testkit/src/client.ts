// The client's test bed: snapshots as plain data, and HAProxy state in a comparable form.
import type { BackendConfig, InvalidSlot, Slot, Snapshot } from "@hsdo/core";
import { parseServersState } from "@hsdo/client";

export function readySlot(slot: number, addr: string, extra: Partial<Slot> = {}): Slot {
  return { slot, state: "ready", addr, port: 8080, name: `i-${slot}`, group: "asg-a", az: "az-a", weight: 10, ...extra };
}

/** A snapshot of `size` slots: the given ones, free elsewhere. */
export function snapshotOf(pool: string, size: number, slots: readonly Slot[], invalid: InvalidSlot[] = []): Snapshot {
  const all: Slot[] = [];
  for (let n = 1; n <= size; n++) all.push(slots.find((s) => s.slot === n) ?? { slot: n, state: "free", weight: 0 });
  return {
    pool,
    head: { generation: 1, epoch: 1, leader: "test", updatedAt: Date.UTC(2026, 0, 1), size },
    slots: all,
    invalid,
  };
}

export function backendOf(name: string, prefix: string, extra: Partial<BackendConfig> = {}): BackendConfig {
  return { name, prefix, pool: "p", select: "all", allInFallback: false, ...extra };
}

/** One backend's servers as `name -> "state addr:port w<uweight>"` (maint servers as just "maint"). */
export function describeServers(showServersState: string, backend: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of parseServersState(showServersState).get(backend) ?? []) {
    out[s.name] = s.state === "maint" ? "maint" : `${s.state} ${s.addr}:${s.port} w${s.uweight}`;
  }
  return out;
}
