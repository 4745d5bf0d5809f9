import { freeSlot, type Head, type InvalidSlot, type Slot, type Snapshot } from "@hsdo/core";
import { generationOf, parseSlot, slotNumberOf, type Item } from "./items.ts";

/** The outcome of putting a head and slot items together; a torn read is data, so the caller decides to retry. */
export type Assembly =
  | { kind: "ok"; snapshot: Snapshot }
  | { kind: "torn"; slot: number; slotGeneration: number; headGeneration: number };

/**
 * Builds the pool as of `head`: exactly `head.size` slots, a missing item is
 * a free slot, an item that fails validation is a free slot listed in
 * `invalid` (with its name and addr when they pass their own checks, so a
 * leader can tell whose slot it was: docs/ARCHITECTURE.md, "Quarantine"). A slot item newer than the head means a publication is half-way
 * (the seqlock's odd count), so the read is torn and nothing is returned.
 * Items outside 1..size are leftovers of a larger pool and are ignored.
 */
export function assembleSnapshot(pool: string, head: Head, items: readonly Item[]): Assembly {
  const bySlot = new Map<number, Item>();
  for (const item of items) {
    const n = slotNumberOf(item);
    if (n !== undefined && Number.isInteger(n) && n >= 1 && n <= head.size) bySlot.set(n, item);
  }
  for (const [slot, item] of bySlot) {
    const slotGeneration = generationOf(item);
    if (slotGeneration > head.generation) return { kind: "torn", slot, slotGeneration, headGeneration: head.generation };
  }
  const slots: Slot[] = [];
  const invalid: InvalidSlot[] = [];
  for (let k = 1; k <= head.size; k++) {
    const item = bySlot.get(k);
    if (!item) {
      slots.push(freeSlot(k));
      continue;
    }
    const check = parseSlot(item, k);
    if (check.ok) {
      slots.push(check.slot);
    } else {
      slots.push(freeSlot(k));
      const { ok: _ok, ...bad } = check;
      invalid.push({ ...bad, slot: k });
    }
  }
  return { kind: "ok", snapshot: { pool, head, slots, invalid } };
}
