import { isIP } from "node:net";
import { addressClass } from "./address.ts";
import type { Head, InvalidSlot, Slot, SlotState, Target } from "./model.ts";

/**
 * Everything read from the table is checked here before it can reach the
 * Runtime API: a value that passes cannot carry a `;`, a newline or a space
 * into a command. The outcome is data, so a bad item becomes one `maint`
 * slot and a counter, never an exception halfway through a batch.
 */
export type SlotCheck = { ok: true; slot: Slot } | ({ ok: false } & InvalidSlot);

const NAME = /^[A-Za-z0-9._:-]{1,128}$/;
const STATES: readonly SlotState[] = ["free", "ready", "drain"];
export const MAX_WEIGHT = 256;
/** Largest pool hsdo accepts from a head item; a bigger `size` is a corrupt item, not a pool. */
export const MAX_POOL_SIZE = 10_000;

/**
 * An address HAProxy can send traffic to: an IPv4 or IPv6 literal, without a
 * zone id (HAProxy refuses `%lo`), and not unspecified (`0.0.0.0` and `::`
 * mean "the client's original destination" to HAProxy: a loop back to
 * itself), broadcast or multicast.
 *
 * Structural only: what a value must be to appear in a Runtime API command
 * (formatCommand) or a table item (validateSlot), so loopback and link-local
 * pass (the server-template placeholder is 127.0.0.2). Whether an address
 * may be a *target* is targetAddressProblem's question, asked where targets
 * enter (the server's targetProblems) and where slots become servers (the
 * client's desiredServers).
 */
export function isIpLiteral(value: unknown): value is string {
  if (typeof value !== "string" || value.includes("%")) return false;
  const family = isIP(value);
  if (family === 4) {
    const first = Number(value.split(".")[0]);
    return value !== "0.0.0.0" && value !== "255.255.255.255" && !(first >= 224 && first <= 239);
  }
  if (family === 6) {
    const lower = value.toLowerCase();
    return !/^(0*:)*:?0*$/.test(lower) && !lower.startsWith("ff");
  }
  return false;
}

export function isPort(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535;
}

export function isWeight(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_WEIGHT;
}

export function isSafeName(value: unknown): value is string {
  return typeof value === "string" && NAME.test(value);
}

function describe(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A value in a problem: JSON (strings quoted), `(missing)` when absent, cut at 60 characters. */
export function showValue(value: unknown): string {
  if (value === undefined) return "(missing)";
  let text: string;
  try {
    text = typeof value === "string" ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export type HeadCheck = { ok: true; head: Head } | { ok: false; problems: string[] };

/**
 * Checks a head (plain values): the store's head item as read from the
 * table, and the head of a snapshot the client cached on disk, by the same
 * rules.
 */
export function validateHead(item: Record<string, unknown>): HeadCheck {
  const v = item;
  const problems: string[] = [];
  if (!isCount(v.generation)) problems.push(`generation ${showValue(v.generation)} is not an integer >= 0`);
  if (!isCount(v.epoch)) problems.push(`epoch ${showValue(v.epoch)} is not an integer >= 0`);
  if (typeof v.leader !== "string") problems.push(`leader ${showValue(v.leader)} is not a string`);
  if (typeof v.updatedAt !== "number" || !Number.isFinite(v.updatedAt)) problems.push(`updatedAt ${showValue(v.updatedAt)} is not a time in ms`);
  if (!isCount(v.size)) problems.push(`size ${showValue(v.size)} is not a whole number (expected a slot count, 1..${MAX_POOL_SIZE})`);
  else if (v.size < 1 || v.size > MAX_POOL_SIZE) problems.push(`size ${showValue(v.size)} is not a slot count (expected 1..${MAX_POOL_SIZE})`);
  if (problems.length) return { ok: false, problems };
  return {
    ok: true,
    head: { generation: v.generation as number, epoch: v.epoch as number, leader: v.leader as string, updatedAt: v.updatedAt as number, size: v.size as number },
  };
}

function optionalNumber(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/**
 * Checks one slot item (already unmarshalled to plain values). `expectedSlot`
 * is the slot number the item was found under, when known.
 */
export function validateSlot(item: Record<string, unknown>, expectedSlot?: number): SlotCheck {
  const problems: string[] = [];
  const slotNo = item.slot;
  const slot = typeof slotNo === "number" && Number.isInteger(slotNo) && slotNo >= 1 ? slotNo : undefined;
  if (slot === undefined) problems.push(`slot ${describe(slotNo)} is not a slot number (expected an integer >= 1)`);
  if (expectedSlot !== undefined && slot !== undefined && slot !== expectedSlot) {
    problems.push(`slot ${slot} found where slot ${expectedSlot} was expected`);
  }
  const state = item.state;
  if (typeof state !== "string" || !STATES.includes(state as SlotState)) {
    problems.push(`state ${describe(state)} is not one of ${STATES.join(", ")}`);
  }
  const number = slot ?? expectedSlot ?? 0;
  if (problems.length > 0) return invalid(number, problems, item);

  if (state === "free") {
    // Slot memory: absent on items written before it existed, which stay valid.
    if (item.last !== undefined && item.last !== null && !isSafeName(item.last)) {
      return invalid(number, [`last ${describe(item.last)} is not a name (expected [A-Za-z0-9._:-])`], item);
    }
    const free: Slot = { slot: number, state: "free", weight: 0, ...stamps(item) };
    if (isSafeName(item.last)) free.last = item.last;
    return { ok: true, slot: free };
  }
  if (!isIpLiteral(item.addr)) problems.push(`addr ${describe(item.addr)} is not an IP address`);
  if (item.port !== undefined && item.port !== null && !isPort(item.port)) {
    problems.push(`port ${describe(item.port)} is not a port (expected 1..65535)`);
  }
  if (!isWeight(item.weight)) problems.push(`weight ${describe(item.weight)} is not a weight (expected 0..${MAX_WEIGHT})`);
  if (!isSafeName(item.name)) problems.push(`name ${describe(item.name)} is not a name (expected [A-Za-z0-9._:-])`);
  for (const key of ["group", "az"] as const) {
    const value = item[key];
    if (value !== undefined && value !== null && value !== "" && !isSafeName(value)) {
      problems.push(`${key} ${describe(value)} is not a name (expected [A-Za-z0-9._:-])`);
    }
  }
  if (problems.length > 0) return invalid(number, problems, item);
  const result: Slot = {
    slot: number,
    state: state as SlotState,
    addr: item.addr as string,
    name: item.name as string,
    weight: item.weight as number,
    ...stamps(item),
  };
  if (isPort(item.port)) result.port = item.port;
  if (typeof item.group === "string" && item.group !== "") result.group = item.group;
  if (typeof item.az === "string" && item.az !== "") result.az = item.az;
  const since = optionalNumber(item.since);
  if (since !== undefined) result.since = since;
  const drainUntil = optionalNumber(item.drainUntil);
  if (drainUntil !== undefined) result.drainUntil = drainUntil;
  return { ok: true, slot: result };
}

/**
 * A failed check, with what still identifies the item's target: only values
 * that pass their own check (a safe name, an IP literal, a known state), so
 * nothing unchecked travels further than the problem text.
 */
function invalid(slot: number, problems: string[], item: Record<string, unknown>): SlotCheck {
  const out: SlotCheck = { ok: false, slot, problems };
  if (isSafeName(item.name)) out.name = item.name;
  else if (isSafeName(item.last)) out.name = item.last;
  if (isIpLiteral(item.addr)) out.addr = item.addr;
  if (typeof item.state === "string" && STATES.includes(item.state as SlotState)) out.state = item.state as SlotState;
  return out;
}

function stamps(item: Record<string, unknown>): Pick<Slot, "generation" | "epoch"> {
  const out: Pick<Slot, "generation" | "epoch"> = {};
  const generation = optionalNumber(item.generation);
  if (generation !== undefined) out.generation = generation;
  const epoch = optionalNumber(item.epoch);
  if (epoch !== undefined) out.epoch = epoch;
  return out;
}

/** What the configuration allows of addresses that are otherwise never targets. */
export interface AddressPolicy {
  /** Allow loopback (127.0.0.0/8, ::1) targets: local setups, the demo and the tests run origins on 127.0.0.x. */
  allowLoopback?: boolean;
}

/**
 * Why `addr` can never be a target, or undefined when it can: not an IP
 * literal HAProxy takes, or loopback (unless allowed), link-local (the
 * instance metadata service at 169.254.169.254 and fd00:ec2::254),
 * unspecified, "this network", multicast, broadcast or reserved, IPv4-mapped
 * forms included. Only loopback can be allowed, and only by the
 * configuration (`allowLoopback`); the rest is refused whatever it says.
 */
export function targetAddressProblem(addr: unknown, policy: AddressPolicy = {}): string | undefined {
  if (typeof addr === "string") {
    const cls = addressClass(addr);
    const shown = isIP(addr) ? addr : describe(addr);
    if (cls?.kind === "loopback" && !policy.allowLoopback) {
      return `addr ${shown} is ${cls.reason}: never a target (allowLoopback: true allows it, for local setups only)`;
    }
    if (cls && cls.kind !== "loopback") return `addr ${shown} is ${cls.reason}: never a target`;
  }
  if (!isIpLiteral(addr)) return `addr ${describe(addr)} is not an IP address`;
  return undefined;
}

/**
 * What would make a source's target unpublishable (the writer refuses any
 * slot that fails validateSlot), or must never be a target (an address
 * targetAddressProblem refuses): checked per target, so one bad target is
 * kept out instead of blocking the whole publication.
 */
export function targetProblems(t: Target, policy: AddressPolicy = {}): string[] {
  const problems: string[] = [];
  if (!isSafeName(t.id)) problems.push(`id ${describe(t.id)} is not a name (expected [A-Za-z0-9._:-])`);
  const addrProblem = t.health === "ready" ? targetAddressProblem(t.addr, policy) : undefined;
  if (addrProblem !== undefined) problems.push(addrProblem);
  if (t.port !== undefined && !isPort(t.port)) problems.push(`port ${describe(t.port)} is not a port (expected 1..65535)`);
  for (const key of ["group", "az"] as const) {
    if (t[key] !== "" && !isSafeName(t[key])) problems.push(`${key} ${describe(t[key])} is not a name (expected [A-Za-z0-9._:-])`);
  }
  return problems;
}
