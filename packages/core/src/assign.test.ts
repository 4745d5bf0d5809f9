import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { assignSlots, type AssignConfig } from "./assign.ts";
import { ConfigError } from "./errors.ts";
import type { Slot, Target, TargetHealth } from "./model.ts";

const cfg: AssignConfig = { size: 5, weight: { min: 1, max: 10, step: 1, intervalMs: 30_000 }, drainMs: 60_000 };
const t = (id: string, launchedAt: number, health: TargetHealth = "ready"): Target => ({
  id,
  addr: `10.0.${launchedAt % 250}.${(id.charCodeAt(id.length - 1) % 250) + 1}`,
  group: "asg-a",
  az: "eu-west-3a",
  launchedAt,
  health,
});
const names = (slots: Slot[]) => slots.map((s) => (s.state === "free" ? "-" : `${s.name}:${s.state}`));

test("new ready targets take the lowest free slots in launch order, then id", () => {
  const r = assignSlots([], [t("i-c", 2), t("i-b", 1), t("i-a", 1), t("i-p", 0, "pending")], 0, cfg);
  assert.deepEqual(names(r.slots), ["i-a:ready", "i-b:ready", "i-c:ready", "-", "-"]);
  assert.equal(r.changed.length, 3);
  assert.equal(r.slots[0]!.weight, 1);
});

test("a leaving target drains in its slot, then its slot is freed and reused lowest first", () => {
  let r = assignSlots([], [t("i-a", 1), t("i-b", 2), t("i-c", 3)], 0, cfg);
  r = assignSlots(r.slots, [t("i-a", 1), t("i-b", 2, "leaving"), t("i-c", 3)], 1000, cfg);
  assert.deepEqual(names(r.slots), ["i-a:ready", "i-b:drain", "i-c:ready", "-", "-"]);
  assert.equal(r.slots[1]!.drainUntil, 61_000);
  assert.deepEqual(r.changed.map((s) => s.slot), [2]);
  // A newcomer while slot 2 drains takes slot 4, never the draining one.
  r = assignSlots(r.slots, [t("i-a", 1), t("i-c", 3), t("i-d", 4)], 2000, cfg);
  assert.deepEqual(names(r.slots), ["i-a:ready", "i-b:drain", "i-c:ready", "i-d:ready", "-"]);
  r = assignSlots(r.slots, [t("i-a", 1), t("i-c", 3), t("i-d", 4)], 61_000, cfg);
  assert.deepEqual(names(r.slots), ["i-a:ready", "-", "i-c:ready", "i-d:ready", "-"]);
  assert.deepEqual(r.drained.map((s) => s.name), ["i-b"]);
  r = assignSlots(r.slots, [t("i-a", 1), t("i-c", 3), t("i-d", 4), t("i-e", 5)], 62_000, cfg);
  assert.deepEqual(names(r.slots), ["i-a:ready", "i-e:ready", "i-c:ready", "i-d:ready", "-"]);
});

test("weights ramp from since, and only a changed weight is a change", () => {
  let r = assignSlots([], [t("i-a", 1)], 0, cfg);
  r = assignSlots(r.slots, [t("i-a", 1)], 29_000, cfg);
  assert.equal(r.changed.length, 0);
  r = assignSlots(r.slots, [t("i-a", 1)], 30_000, cfg);
  assert.equal(r.slots[0]!.weight, 2);
  assert.equal(r.changed.length, 1);
});

test("a draining target that becomes ready again keeps its slot and ramps again", () => {
  let r = assignSlots([], [t("i-a", 1), t("i-b", 2)], 0, cfg);
  r = assignSlots(r.slots, [t("i-a", 1), t("i-b", 2, "leaving")], 10_000, cfg);
  r = assignSlots(r.slots, [t("i-a", 1), t("i-b", 2)], 20_000, cfg);
  assert.deepEqual(names(r.slots), ["i-a:ready", "i-b:ready", "-", "-", "-"]);
  assert.equal(r.slots[1]!.since, 20_000);
  assert.equal(r.slots[1]!.weight, 1);
  assert.equal(r.slots[1]!.drainUntil, undefined);
});

test("more targets than slots: the extra wait, nobody is evicted", () => {
  const many = Array.from({ length: 7 }, (_, i) => t(`i-${i}`, i));
  const r = assignSlots([], many, 0, cfg);
  assert.deepEqual(r.unassigned.map((x) => x.id), ["i-5", "i-6"]);
  const later = assignSlots(r.slots, [t("i-early", -1), ...many], 1, cfg);
  assert.deepEqual(later.unassigned.map((x) => x.id), ["i-early", "i-5", "i-6"]);
  assert.deepEqual(names(later.slots), names(r.slots));
});

test("a size below an occupied slot is refused with a clear error; free tail slots may go", () => {
  const r = assignSlots([], [t("i-a", 1), t("i-b", 2), t("i-c", 3)], 0, cfg);
  assert.throws(() => assignSlots(r.slots, [], 0, { ...cfg, size: 2 }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /^size: 2 is below slot 3, which holds i-c/);
    return true;
  });
  assert.equal(assignSlots(r.slots, [], 0, { ...cfg, size: 3 }).slots.length, 3);
});

test("a target's address change is applied in place, in the same slot", () => {
  let r = assignSlots([], [t("i-a", 1)], 0, cfg);
  r = assignSlots(r.slots, [{ ...t("i-a", 1), addr: "10.9.9.9" }], 1, cfg);
  assert.equal(r.slots[0]!.addr, "10.9.9.9");
  assert.equal(r.slots[0]!.name, "i-a");
});

type Step =
  | { kind: "join"; id: number; launch: number }
  | { kind: "leave"; id: number }
  | { kind: "health"; id: number; health: TargetHealth }
  | { kind: "wait"; ms: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("join" as const), id: fc.integer({ min: 0, max: 30 }), launch: fc.integer({ min: 0, max: 1000 }) }),
  fc.record({ kind: fc.constant("leave" as const), id: fc.integer({ min: 0, max: 30 }) }),
  fc.record({
    kind: fc.constant("health" as const),
    id: fc.integer({ min: 0, max: 30 }),
    health: fc.constantFrom<TargetHealth>("ready", "pending", "leaving"),
  }),
  fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
);

function simulate(steps: Step[], size: number): Slot[][] {
  const c = { ...cfg, size };
  const fleet = new Map<string, Target>();
  let slots: Slot[] = [];
  let now = 0;
  const history: Slot[][] = [];
  for (const step of steps) {
    if (step.kind === "join") fleet.set(`i-${step.id}`, t(`i-${step.id}`, step.launch));
    else if (step.kind === "leave") fleet.delete(`i-${step.id}`);
    else if (step.kind === "health") {
      const cur = fleet.get(`i-${step.id}`);
      if (cur) fleet.set(cur.id, { ...cur, health: step.health });
    } else now += step.ms;
    const prev = slots;
    const r = assignSlots(prev, [...fleet.values()], now, c);
    slots = r.slots;
    history.push(slots);

    // Invariant: a target that held a slot and still holds one holds the same one.
    const before = new Map(prev.filter((s) => s.state !== "free").map((s) => [s.name!, s.slot]));
    for (const s of slots) {
      if (s.state === "free") continue;
      const was = before.get(s.name!);
      if (was !== undefined) assert.equal(s.slot, was, `${s.name} moved from slot ${was} to ${s.slot}`);
    }
    // No two slots hold the same target.
    const held = slots.filter((s) => s.state !== "free").map((s) => s.name);
    assert.equal(new Set(held).size, held.length, `duplicate target in ${JSON.stringify(held)}`);
    // A target that was live (ready) never leaves its slot without draining first.
    for (const p of prev) {
      if (p.state === "ready" && slots[p.slot - 1]!.name !== p.name) {
        assert.equal(c.drainMs, 0, `${p.name} left slot ${p.slot} without draining`);
      }
    }
    // Freed slots are reused lowest first: every newcomer sits in the lowest slot that was free.
    const free = new Set(prev.length ? prev.filter((s) => s.state === "free").map((s) => s.slot) : slots.map((s) => s.slot));
    const newcomers = slots.filter((s) => s.state !== "free" && !before.has(s.name!)).map((s) => s.slot);
    const stillFree = slots.filter((s) => s.state === "free" && free.has(s.slot)).map((s) => s.slot);
    for (const n of newcomers) for (const f of stillFree) assert.ok(n < f, `slot ${f} stayed free while a newcomer took ${n}`);
    // More ready targets than slots only when every slot is taken.
    if (r.unassigned.length > 0) assert.ok(slots.every((s) => s.state !== "free"));
  }
  return history;
}

test("property: random joins, leaves and health changes never move a live target, and replay identically", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 50, maxLength: 400 }), fc.integer({ min: 1, max: 12 }), (steps, size) => {
      const first = simulate(steps, size);
      const second = simulate(steps, size);
      assert.deepEqual(second, first);
    }),
    { numRuns: 150, seed: 20261123 },
  );
});

test("times written by a leader whose clock ran ahead are capped: no weight drop, no shortened drain beyond a full one", () => {
  let r = assignSlots([], [t("i-a", 1), t("i-b", 2)], 0, cfg);
  const ahead = r.slots.map((s) => (s.slot === 1 ? { ...s, since: 10 * 60_000, weight: 10 } : s));
  r = assignSlots(ahead, [t("i-a", 1), t("i-b", 2)], 120_000, cfg);
  assert.equal(r.slots[0]!.weight, 10, "a since in the future keeps the weight reached, instead of dropping to min");
  assert.ok(r.slots[0]!.since! <= 120_000);
  const drainingFar = [{ ...r.slots[1]!, state: "drain" as const, drainUntil: 10 * 60 * 60_000 }];
  r = assignSlots([r.slots[0]!, ...drainingFar], [t("i-a", 1)], 120_000, cfg);
  assert.equal(r.slots[1]!.drainUntil, 120_000 + cfg.drainMs);
});
