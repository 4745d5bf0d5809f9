import {
  PreflightError,
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

/**
 * What one server of one backend should be: a state to drive it to, or
 * `keep` when the client cannot know what it should be (see KeptServer).
 */
export type DesiredServer = SetServer | KeptServer;

/** A state to drive the server to. addr, port and weight are set only for ready and drain. */
export interface SetServer {
  server: string;
  slot: number;
  state: ServerState;
  addr?: string;
  port?: number;
  weight?: number;
  /** Why the server is `maint` when something is wrong (invalid slot): logged and counted. */
  problem?: string;
  /** The slot's address can never be a target (targetAddressProblem): an invalid slot, counted as one. */
  refused?: true;
}

/**
 * "Cannot reconcile": the slot is live but the client cannot know what its
 * server should be (no port from the target nor the backend, a server name it
 * cannot address). The server is left exactly as HAProxy has it, no command at
 * all: taking a serving server down because of a configuration omission would
 * turn a missing line into an outage. Invalid table items are not kept: they
 * are `maint`, hsdo must not serve what it cannot check.
 */
export interface KeptServer {
  server: string;
  slot: number;
  state: "keep";
  /** Why, for logs and readiness: names the backend and what to change. */
  problem: string;
  /** What is missing: `port` (the backend needs `port`), `name` (the prefix makes no usable name). */
  reason: "port" | "name";
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
 * A valid
 * live slot the client cannot turn into a server (no port known) is `keep`.
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
    const maint = (problem?: string): SetServer =>
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
    const keep = (reason: KeptServer["reason"], problem: string): KeptServer => ({ server, slot: n, state: "keep", problem, reason });
    if (!isSafeName(server)) {
      out.push(keep("name", `server name ${JSON.stringify(server)} is not a name (check the backend's prefix); left as it is`));
      continue;
    }
    const port = backend.port ?? slot.port;
    if (!isPort(port)) {
      out.push(
        keep(
          "port",
          backend.port === undefined
            ? `${noPortProblem(backend, n, slot.name)}; left as it is`
            : `backend ${backend.name} port ${JSON.stringify(backend.port)} is not a port (expected 1..65535); left as it is`,
        ),
      );
      continue;
    }
    out.push({ server, slot: n, state: slot.state, addr: slot.addr as string, port, weight: slot.weight });
  }
  return out;
}

/** The problem text of a live slot without a port for a backend without one: names the backend and the line to add. */
function noPortProblem(backend: Pick<BackendConfig, "name" | "pool">, slot: number, target: string | undefined): string {
  return (
    `slot ${slot}${target ? ` (${target})` : ""} of pool ${backend.pool} has no port and backend ${backend.name} sets none: ` +
    `add \`port: <port the targets listen on>\` (e.g. \`port: 8080\`) under backend ${backend.name} in client.backends, ` +
    "or have the server store one (server.aws.port for ASGs, the service's port in Consul, `port` in the static file)"
  );
}

/**
 * The start-up check against the data: for each backend without `port`, the
 * live slots of its pool's snapshot (table or cache) that carry no port and
 * that it selects. Empty when every server's port is known. Pure: the caller
 * turns a non-empty answer into a PreflightError (see `checkPortOmissions`).
 */
export function portOmissions(
  snapshots: readonly Snapshot[],
  backends: readonly BackendConfig[],
  client: ClientIdentity,
): { backend: string; slots: number[]; problem: string }[] {
  const byPool = new Map(snapshots.map((s) => [s.pool, s]));
  const out: { backend: string; slots: number[]; problem: string }[] = [];
  for (const backend of backends) {
    if (backend.port !== undefined) continue;
    const snapshot = byPool.get(backend.pool);
    if (!snapshot) continue;
    const slots = desiredServers(snapshot, backend, client)
      .filter((d): d is KeptServer => d.state === "keep" && d.reason === "port")
      .map((d) => d.slot);
    if (slots.length === 0) continue;
    out.push({
      backend: backend.name,
      slots,
      problem:
        `backend ${backend.name} sets no port and ${slots.length} live slot(s) of pool ${backend.pool} carry none ` +
        `(slot ${slots.slice(0, 5).join(", ")}${slots.length > 5 ? ", ..." : ""}): add \`port: 8080\` (the port the targets listen on) ` +
        `under backend ${backend.name} in client.backends, or have the server store one ` +
        "(server.aws.port for ASGs, the service's port in Consul, `port` in the static file)",
    });
  }
  return out;
}

/**
 * Throws one PreflightError (exit 2) listing every backend of `portOmissions`:
 * for start-up, on the first snapshot of each pool, before anything is applied.
 */
export function checkPortOmissions(snapshots: readonly Snapshot[], backends: readonly BackendConfig[], client: ClientIdentity): void {
  const found = portOmissions(snapshots, backends, client);
  if (found.length === 0) return;
  throw new PreflightError(`the servers of ${found.map((f) => f.backend).join(", ")} cannot be set:\n  - ${found.map((f) => f.problem).join("\n  - ")}`);
}
