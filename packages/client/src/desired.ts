import {
  isPort,
  isSafeName,
  targetAddressProblem,
  validateSlot,
  type AddressPolicy,
  type BackendConfig,
  type Slot,
  type Snapshot,
} from "@hsdo/core";
import type { ServerState } from "./commands.ts";

/** Who this client is, for `dedicated` and `fallback` backends. */
export interface ClientIdentity {
  /** This node's AZ; "" for none (then only groups select). */
  az: string;
  /** This node's groups (ASG names, Consul services). */
  groups: readonly string[];
}

/** What one server of one backend should be. addr, port and weight are set only for ready and drain. */
export interface DesiredServer {
  server: string;
  slot: number;
  state: ServerState;
  addr?: string;
  port?: number;
  weight?: number;
  /** Why the server is `maint` when something is wrong (invalid slot, no port): logged and counted. */
  problem?: string;
  /** The slot's address can never be a target (targetAddressProblem): an invalid slot, counted as one. */
  refused?: true;
}

/** Whether a backend takes this slot's target, by its `select`. */
export function selects(backend: Pick<BackendConfig, "select" | "allInFallback">, slot: Slot, client: ClientIdentity): boolean {
  if (backend.select === "all") return true;
  const dedicated =
    (slot.group !== undefined && client.groups.includes(slot.group)) ||
    (client.az !== "" && slot.az !== undefined && slot.az === client.az);
  if (backend.select === "dedicated") return dedicated;
  return backend.allInFallback || !dedicated;
}

/**
 * One entry per slot 1..head.size: every server gets an explicit state.
 * Each slot is validated again here, whatever the reader did, so that only
 * checked values can become commands; a slot that fails is `maint`. So is a
 * slot whose address can never be a target (169.254.169.254, loopback
 * unless `addresses.allowLoopback`), whatever the server or a hand edit of
 * the table put there: validateSlot only checks what HAProxy can parse.
 */
export function desiredServers(
  snapshot: Snapshot,
  backend: BackendConfig,
  client: ClientIdentity,
  addresses: AddressPolicy = {},
): DesiredServer[] {
  const bySlot = new Map<number, Slot>();
  for (const slot of snapshot.slots) {
    if (slot && typeof slot.slot === "number" && !bySlot.has(slot.slot)) bySlot.set(slot.slot, slot);
  }
  const invalid = new Map<number, string[]>();
  for (const bad of snapshot.invalid ?? []) invalid.set(bad.slot, bad.problems);

  const out: DesiredServer[] = [];
  for (let n = 1; n <= snapshot.head.size; n++) {
    const server = `${backend.prefix}${n}`;
    const maint = (problem?: string): DesiredServer =>
      problem === undefined ? { server, slot: n, state: "maint" } : { server, slot: n, state: "maint", problem };

    if (invalid.has(n)) {
      out.push(maint(`slot ${n} is invalid: ${(invalid.get(n) ?? []).join("; ")}`));
      continue;
    }
    const raw = bySlot.get(n);
    if (raw === undefined) {
      out.push(maint(`slot ${n} is missing from the snapshot of pool ${snapshot.pool}`));
      continue;
    }
    const check = validateSlot(raw as unknown as Record<string, unknown>, n);
    if (!check.ok) {
      out.push(maint(`slot ${n} is invalid: ${check.problems.join("; ")}`));
      continue;
    }
    const slot = check.slot;
    if (slot.state === "free" || !selects(backend, slot, client)) {
      out.push(maint());
      continue;
    }
    const refused = targetAddressProblem(slot.addr, addresses);
    if (refused !== undefined) {
      out.push({ ...maint(`slot ${n} (${slot.name}) is refused: ${refused}`), refused: true });
      continue;
    }
    if (!isSafeName(server)) {
      out.push(maint(`server name ${JSON.stringify(server)} is not a name (check the backend's prefix)`));
      continue;
    }
    const port = backend.port ?? slot.port;
    if (!isPort(port)) {
      out.push(
        maint(
          backend.port === undefined
            ? `slot ${n} (${slot.name}) has no port and backend ${backend.name} sets none: set the backend's port`
            : `backend ${backend.name} port ${JSON.stringify(backend.port)} is not a port (expected 1..65535)`,
        ),
      );
      continue;
    }
    out.push({ server, slot: n, state: slot.state, addr: slot.addr as string, port, weight: slot.weight });
  }
  return out;
}
