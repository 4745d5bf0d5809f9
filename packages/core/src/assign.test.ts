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
  | { kind: "outage"; ticks: number }
  | { kind: "wait"; ms: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("join" as const), id: fc.integer({ min: 0, max: 30 }), launch: fc.integer({ min: 0, max: 1000 }) }),
  fc.record({ kind: fc.constant("leave" as const), id: fc.integer({ min: 0, max: 30 }) }),
  fc.record({
    kind: fc.constant("health" as const),
    id: fc.integer({ min: 0, max: 30 }),
    health: fc.constantFrom<TargetHealth>("ready", "pending", "leaving"),
  }),
  // The source answers [] (a token without service:read, an empty page) for a few ticks, then the whole fleet again.
  fc.record({ kind: fc.constant("outage" as const), ticks: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
);

/** One address per id, so "no address in two slots" checks the assignment, not the generator. */
const member = (id: number, launch: number): Target => ({ ...t(`i-${id}`, launch), addr: `10.1.${Math.floor(id / 250)}.${(id % 250) + 1}` });

function simulate(steps: Step[], size: number): Slot[][] {
  const c = { ...cfg, size };
  const fleet = new Map<string, Target>();
  let slots: Slot[] = [];
  let now = 0;
  const history: Slot[][] = [];
  /** The slot each target last held, and the target each slot last held. */
  const lastSlot = new Map<string, number>();
  const lastOccupant = new Map<number, string>();
  const tick = (answer: Target[]) => {
    const prev = slots;
    const r = assignSlots(prev, answer, now, c);
    slots = r.slots;
    history.push(slots);
    const listed = new Map(answer.map((x) => [x.id, x]));

    // Invariant: a target that held a slot and still holds one holds the same one.
    const before = new Map(prev.filter((s) => s.state !== "free").map((s) => [s.name!, s.slot]));
    for (const s of slots) {
      if (s.state === "free") continue;
      const was = before.get(s.name!);
      if (was !== undefined) assert.equal(s.slot, was, `${s.name} moved from slot ${was} to ${s.slot}`);
    }
    // No two slots hold the same target, nor the same address.
    const held = slots.filter((s) => s.state !== "free");
    assert.equal(new Set(held.map((s) => s.name)).size, held.length, `duplicate target in ${JSON.stringify(held.map((s) => s.name))}`);
    assert.equal(new Set(held.map((s) => s.addr)).size, held.length, `duplicate address in ${JSON.stringify(held.map((s) => s.addr))}`);
    for (const p of prev) {
      if (p.state !== "ready") continue;
      const now_ = slots[p.slot - 1]!;
      const target = listed.get(p.name!);
      if (target === undefined) {
        // Gone from the answer: free (maint) at once, remembering it, and nobody else's this generation.
        assert.equal(now_.state, "free", `${p.name} is gone but slot ${p.slot} is ${now_.state}`);
        assert.equal(now_.last, p.name);
      } else if (target.health !== "ready") {
        // Still listed but leaving: it drains first.
        assert.equal(now_.state, c.drainMs > 0 ? "drain" : "free", `${p.name} left slot ${p.slot} without draining`);
      }
    }
    // A returning target whose old slot is still free (and last its) takes it back.
    const returning = new Set<string>();
    for (const target of answer) {
      if (target.health !== "ready" || before.has(target.id)) continue;
      const old = lastSlot.get(target.id);
      if (old === undefined || old > size || prev[old - 1]?.state !== "free" || lastOccupant.get(old) !== target.id) continue;
      assert.equal(slots[old - 1]!.name, target.id, `${target.id} came back but did not get its old slot ${old}`);
      returning.add(target.id);
    }
    // Newcomers sit in the lowest slots that were free.
    const free = new Set(prev.length ? prev.filter((s) => s.state === "free").map((s) => s.slot) : slots.map((s) => s.slot));
    const newcomers = slots.filter((s) => s.state !== "free" && !before.has(s.name!) && !returning.has(s.name!)).map((s) => s.slot);
    const stillFree = slots.filter((s) => s.state === "free" && free.has(s.slot)).map((s) => s.slot);
    for (const n of newcomers) for (const f of stillFree) assert.ok(n < f, `slot ${f} stayed free while a newcomer took ${n}`);
    // ...or a slot whose drain ended this tick; never one whose target went away this tick.
    for (const n of newcomers) {
      assert.ok(free.has(n) || r.drained.some((d) => d.slot === n), `a newcomer took slot ${n}, which was neither free nor drained`);
      assert.ok(!r.gone.some((g) => g.slot === n), `a newcomer took slot ${n} in the generation its target went away`);
    }
    // More ready targets than slots only when every slot is taken by something a newcomer may not take.
    if (r.unassigned.length > 0) assert.ok(slots.every((s) => s.state !== "free" || r.gone.some((g) => g.slot === s.slot)));
    for (const s of slots) {
      if (s.state === "free") continue;
      lastSlot.set(s.name!, s.slot);
      lastOccupant.set(s.slot, s.name!);
    }
  };
  for (const step of steps) {
    if (step.kind === "join") fleet.set(`i-${step.id}`, member(step.id, step.launch));
    else if (step.kind === "leave") fleet.delete(`i-${step.id}`);
    else if (step.kind === "health") {
      const cur = fleet.get(`i-${step.id}`);
      if (cur) fleet.set(cur.id, { ...cur, health: step.health });
    } else if (step.kind === "outage") {
      for (let i = 0; i < step.ticks; i++) tick([]);
    } else now += step.ms;
    tick([...fleet.values()]);
  }
  return history;
}

test("property: random joins, leaves, health changes and outages never move a live target, give returning targets their old slot, and replay identically", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 50, maxLength: 400 }), fc.integer({ min: 1, max: 12 }), (steps, size) => {
      const first = simulate(steps, size);
      const second = simulate(steps, size);
      assert.deepEqual(second, first);
    }),
    { numRuns: 150, seed: 20261123 },
  );
});

test("property: after an outage that freed every slot, the fleet comes back to exactly its old slots", () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 12, maxLength: 12 }), (ids, launches) => {
      const c = { ...cfg, size: 12 };
      const fleet = ids.map((id, i) => member(id, launches[i]!));
      let r = assignSlots([], fleet, 0, c);
      const where = new Map(r.slots.filter((s) => s.state !== "free").map((s) => [s.name, s.slot]));
      r = assignSlots(r.slots, [], 1000, c);
      assert.ok(r.slots.every((s) => s.state === "free"));
      r = assignSlots(r.slots, [], 2000, c);
      // The fleet returns in another order, with one newcomer that must not take anyone's slot.
      r = assignSlots(r.slots, [member(99, -1), ...[...fleet].reverse()], 3000, c);
      for (const [name, slot] of where) assert.equal(r.slots[slot - 1]!.name, name);
    }),
    { numRuns: 100, seed: 20261124 },
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

test("a gone target's slot is free (maint) for one generation, then its replacement takes it on a full pool", () => {
  const c = { ...cfg, size: 2 };
  let r = assignSlots([], [t("i-a", 1), t("i-b", 2)], 0, c);
  // i-b vanishes from the source as its replacement i-c appears: no drain, and i-c waits a generation.
  r = assignSlots(r.slots, [t("i-a", 1), t("i-c", 3)], 1000, c);
  assert.deepEqual(names(r.slots), ["i-a:ready", "-"]);
  assert.equal(r.slots[1]!.last, "i-b");
  assert.deepEqual(r.gone.map((s) => s.name), ["i-b"]);
  assert.deepEqual(r.unassigned.map((x) => x.id), ["i-c"]);
  assert.deepEqual(r.changed.map((s) => s.slot), [2]);
  r = assignSlots(r.slots, [t("i-a", 1), t("i-c", 3)], 2000, c);
  assert.deepEqual(names(r.slots), ["i-a:ready", "i-c:ready"]);
});

test("a leaving target still drains; a draining target that then goes away drains to its end", () => {
  let r = assignSlots([], [t("i-a", 1), t("i-b", 2)], 0, cfg);
  r = assignSlots(r.slots, [t("i-a", 1), t("i-b", 2, "leaving")], 1000, cfg);
  assert.equal(r.slots[1]!.state, "drain");
  r = assignSlots(r.slots, [t("i-a", 1)], 2000, cfg);
  assert.equal(r.slots[1]!.state, "drain");
  r = assignSlots(r.slots, [t("i-a", 1)], 61_000, cfg);
  assert.deepEqual(r.slots[1], { slot: 2, state: "free", weight: 0, last: "i-b" });
});

test("a returning target takes its remembered slot back before any newcomer, even an older one", () => {
  let r = assignSlots([], [t("i-a", 1), t("i-b", 2), t("i-c", 3)], 0, cfg);
  r = assignSlots(r.slots, [t("i-a", 1), t("i-c", 3)], 1000, cfg);
  r = assignSlots(r.slots, [t("i-0", 0), t("i-a", 1), t("i-b", 2), t("i-c", 3)], 2000, cfg);
  assert.deepEqual(names(r.slots), ["i-a:ready", "i-b:ready", "i-c:ready", "i-0:ready", "-"]);
  assert.deepEqual(r.returned.map((s) => s.name), ["i-b"]);
  assert.equal(r.slots[1]!.weight, cfg.weight.min, "a returning target ramps again");
});

test("quarantined slots: never a newcomer's; repaired for a live target, freed for a gone one, kept when nobody can be identified", () => {
  const quarantine = [
    { slot: 1, problems: ["weight \"x\" is not a weight"], name: "i-a", addr: "10.0.1.98", state: "ready" as const },
    { slot: 2, problems: ["addr \"nope\" is not an IP address"], name: "i-gone", state: "ready" as const },
    { slot: 3, problems: ["state \"???\" is not one of free, ready, drain"] },
  ];
  const r = assignSlots([], [t("i-a", 1), t("i-new", 5)], 0, cfg, { quarantine });
  assert.deepEqual(names(r.slots), ["i-a:ready", "-", "-", "i-new:ready", "-"]);
  assert.deepEqual(r.repaired.map((x) => [x.slot.slot, x.how]), [[1, "repaired"], [2, "freed"]]);
  assert.equal(r.slots[1]!.last, "i-gone");
  assert.deepEqual(r.quarantined.map((q) => q.slot), [3]);
  assert.deepEqual(r.changed.map((s) => s.slot).sort(), [1, 2, 4]);
  // Identified by address only, and a held answer settles nothing.
  const byAddr = [{ slot: 1, problems: ["name is bad"], addr: t("i-a", 1).addr }];
  assert.deepEqual(names(assignSlots([], [t("i-a", 1)], 0, cfg, { quarantine: byAddr }).slots).slice(0, 2), ["i-a:ready", "-"]);
  const held = assignSlots([], [t("i-a", 1)], 0, cfg, { quarantine: byAddr, settle: false });
  assert.deepEqual(names(held.slots).slice(0, 2), ["-", "i-a:ready"]);
  assert.deepEqual(held.quarantined.map((q) => q.slot), [1]);
});

test("a quarantined copy of a target that holds another slot is freed, never a second slot", () => {
  const r0 = assignSlots([], [t("i-a", 1)], 0, cfg);
  const r = assignSlots(r0.slots, [t("i-a", 1)], 1000, cfg, { quarantine: [{ slot: 3, problems: ["weight bad"], name: "i-a" }] });
  assert.deepEqual(names(r.slots), ["i-a:ready", "-", "-", "-", "-"]);
  assert.deepEqual(r.slots[2], { slot: 3, state: "free", weight: 0 });
  assert.deepEqual(r.repaired.map((x) => x.how), ["freed"]);
});
