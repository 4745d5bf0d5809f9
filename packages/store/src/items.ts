import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { showValue, validateHead, validateSlot, type Head, type Slot, type SlotCheck } from "@hsdo/core";
import type { Scalar } from "./conditions.ts";
import { HEAD_SLOT, LEASE_SLOT } from "./table.ts";

/**
 * Table items <-> domain values. Items are flat, plain attributes (S, N,
 * BOOL) that read well in the AWS console; nothing is stored as a blob.
 * Everything read back is checked: slot and head items with core's
 * validateSlot and validateHead (the client checks its cached snapshots with
 * the same), lease items here.
 */
export type Item = Record<string, AttributeValue>;
export type Attributes = Record<string, Scalar>;

/** Largest pool hsdo accepts from a head item (core's, kept here for the store's users). */
export { MAX_POOL_SIZE } from "@hsdo/core";

export interface LeaseRecord {
  owner: string;
  /** Leadership term; only ever grows. */
  epoch: number;
  /** Record version: a new random value at every write of the lease. */
  rvn: string;
  /** The holder's lease duration: contenders wait at least this long on an unchanged rvn. */
  leaseMs: number;
  /** Wall-clock time of the last write (ms since epoch), for people reading the table; never used to decide. */
  renewedAt?: number;
  /** The holder stepped down on purpose: a contender may take the lease at once. */
  released?: boolean;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: string[] };

export function keyOf(pool: string, slot: number): Item {
  return marshall({ pool, slot });
}

export function toItem(attributes: Attributes): Item {
  return marshall(attributes);
}

/** Item -> plain values; an attribute DynamoDB can hold but JavaScript cannot (a 40-digit number) is a problem, not a crash. */
export function toPlain(item: Item): Parsed<Record<string, unknown>> {
  try {
    return { ok: true, value: unmarshall(item) };
  } catch (err) {
    return { ok: false, problems: [`item cannot be read: ${err instanceof Error ? err.message : String(err)}`] };
  }
}

export function slotAttributes(pool: string, slot: Slot): Attributes {
  const out: Attributes = { pool, slot: slot.slot, state: slot.state, weight: slot.weight };
  const optional = ["addr", "port", "name", "group", "az", "since", "drainUntil", "generation", "epoch", "last"] as const;
  for (const key of optional) {
    const value = slot[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Reads one slot item; `expectedSlot` is the key it was found under. Never throws. */
export function parseSlot(item: Item, expectedSlot?: number): SlotCheck {
  const plain = toPlain(item);
  if (!plain.ok) return { ok: false, slot: expectedSlot ?? numberOf(item.slot) ?? 0, problems: plain.problems };
  return validateSlot(plain.value, expectedSlot);
}

/**
 * The `generation` of an item as stored, even when the rest of the item is
 * invalid; 0 when absent or not a safe integer, so one corrupt number cannot
 * make a pool look torn forever.
 */
export function generationOf(item: Item): number {
  const n = numberOf(item.generation);
  return n !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

export function slotNumberOf(item: Item): number | undefined {
  return numberOf(item.slot);
}

function numberOf(value: AttributeValue | undefined): number | undefined {
  if (value?.N === undefined) return undefined;
  const n = Number(value.N);
  return Number.isFinite(n) ? n : undefined;
}

export function headAttributes(pool: string, head: Head): Attributes {
  return {
    pool,
    slot: HEAD_SLOT,
    generation: head.generation,
    epoch: head.epoch,
    leader: head.leader,
    updatedAt: head.updatedAt,
    size: head.size,
  };
}

export function parseHead(item: Item): Parsed<Head> {
  const plain = toPlain(item);
  if (!plain.ok) return plain;
  const check = validateHead(plain.value);
  return check.ok ? { ok: true, value: check.head } : check;
}

export function leaseAttributes(pool: string, lease: LeaseRecord): Attributes {
  const out: Attributes = { pool, slot: LEASE_SLOT, owner: lease.owner, epoch: lease.epoch, rvn: lease.rvn, leaseMs: lease.leaseMs };
  if (lease.renewedAt !== undefined) out.renewedAt = lease.renewedAt;
  if (lease.released !== undefined) out.released = lease.released;
  return out;
}

export function parseLease(item: Item): Parsed<LeaseRecord> {
  const plain = toPlain(item);
  if (!plain.ok) return plain;
  const v = plain.value;
  const problems: string[] = [];
  if (typeof v.owner !== "string" || v.owner === "") problems.push(`owner ${showValue(v.owner)} is not a non-empty string`);
  if (!isCount(v.epoch)) problems.push(`epoch ${showValue(v.epoch)} is not an integer >= 0`);
  if (typeof v.rvn !== "string" || v.rvn === "") problems.push(`rvn ${showValue(v.rvn)} is not a non-empty string`);
  if (!isCount(v.leaseMs) || v.leaseMs < 1) problems.push(`leaseMs ${showValue(v.leaseMs)} is not a duration in ms (integer >= 1)`);
  if (v.renewedAt !== undefined && (typeof v.renewedAt !== "number" || !Number.isFinite(v.renewedAt))) {
    problems.push(`renewedAt ${showValue(v.renewedAt)} is not a time in ms`);
  }
  if (v.released !== undefined && typeof v.released !== "boolean") problems.push(`released ${showValue(v.released)} is not a boolean`);
  if (problems.length) return { ok: false, problems };
  const lease: LeaseRecord = { owner: v.owner as string, epoch: v.epoch as number, rvn: v.rvn as string, leaseMs: v.leaseMs as number };
  if (typeof v.renewedAt === "number") lease.renewedAt = v.renewedAt;
  if (v.released === true) lease.released = true;
  return { ok: true, value: lease };
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
