import { test } from "node:test";
import assert from "node:assert/strict";
import type { Target } from "@hsdo/core";
import { serverStep, type SlotPolicy } from "./step.ts";

const cfg: SlotPolicy = { size: 4, weight: { min: 1, max: 10, step: 1, intervalMs: 30_000 }, drainMs: 10_000, maxRemovalFraction: 0.5, confirmTicks: 3 };
const t = (id: string, n: number, extra: Partial<Target> = {}): Target => ({ id, addr: `10.0.0.${n}`, group: "g", az: "a", launchedAt: n, health: "ready", ...extra });

test("an empty answer is held: slots stay, ramps go on, and it applies after confirmTicks", () => {
  const fleet = [t("a", 1), t("b", 2), t("c", 3)];
  let s = serverStep({ slots: [], targets: fleet, accepted: undefined, valve: {}, now: 0, cfg });
  assert.equal(s.changed.length, 3);
  const held = serverStep({ slots: s.slots, targets: [], accepted: s.accepted, valve: s.valve, now: 30_000, cfg });
  assert.equal(held.valveHolding, true);
  assert.deepEqual(held.slots.map((x) => x.state), ["ready", "ready", "ready", "free"]);
  assert.ok(held.slots.slice(0, 3).every((x) => x.weight === 2), "ramp continues while held");
  s = serverStep({ slots: held.slots, targets: [], accepted: held.accepted, valve: held.valve, now: 31_000, cfg });
  assert.equal(s.valveHolding, true);
  s = serverStep({ slots: s.slots, targets: [], accepted: s.accepted, valve: s.valve, now: 32_000, cfg });
  assert.equal(s.valveHolding, false);
  // Accepted: the targets are gone from the source (not leaving), so their slots are freed, remembering them.
  assert.deepEqual(s.slots.map((x) => x.state), ["free", "free", "free", "free"]);
  assert.deepEqual(s.slots.map((x) => x.last), ["a", "b", "c", undefined]);
  // They come back (with a newcomer): each takes its old slot, the newcomer the next free one.
  s = serverStep({ slots: s.slots, targets: [t("n", 0), ...fleet], accepted: s.accepted, valve: s.valve, now: 33_000, cfg });
  assert.equal(s.valveHolding, false);
  assert.deepEqual(s.slots.map((x) => x.name), ["a", "b", "c", "n"]);
});

test("a held answer settles no quarantined slot; an accepted one does", () => {
  const first = serverStep({ slots: [], targets: [t("a", 1), t("b", 2)], accepted: undefined, valve: {}, now: 0, cfg });
  const quarantine = [{ slot: 3, problems: ["weight bad"], name: "c" }];
  const held = serverStep({ slots: first.slots, targets: [], accepted: undefined, valve: {}, now: 1, cfg, quarantine });
  assert.equal(held.valveHolding, true);
  assert.deepEqual(held.quarantined.map((q) => q.slot), [3]);
  assert.equal(held.changed.length, 0);
  const ok = serverStep({ slots: first.slots, targets: [t("a", 1), t("b", 2), t("c", 3)], accepted: undefined, valve: {}, now: 2, cfg, quarantine });
  assert.deepEqual(ok.quarantined, []);
  assert.deepEqual(ok.slots.map((x) => x.name), ["a", "b", "c", undefined]);
});

test("held after a takeover (no accepted answer yet): the table's slots stand in", () => {
  const first = serverStep({ slots: [], targets: [t("a", 1), t("b", 2)], accepted: undefined, valve: {}, now: 0, cfg });
  const s = serverStep({ slots: first.slots, targets: [], accepted: undefined, valve: {}, now: 1, cfg });
  assert.equal(s.valveHolding, true);
  assert.equal(s.changed.length, 0);
});

test("a terminating instance waiting on our hook is released only once its slot is free", () => {
  const hook = "drain-hook";
  let s = serverStep({ slots: [], targets: [t("a", 1), t("b", 2)], accepted: undefined, valve: {}, now: 0, cfg });
  const leaving = [t("a", 1), t("b", 2, { health: "leaving", lifecycleHook: hook })];
  s = serverStep({ slots: s.slots, targets: leaving, accepted: s.accepted, valve: s.valve, now: 1000, cfg });
  assert.equal(s.slots[1]!.state, "drain");
  assert.deepEqual(s.releasable, []);
  s = serverStep({ slots: s.slots, targets: leaving, accepted: s.accepted, valve: s.valve, now: 11_000, cfg });
  assert.equal(s.slots[1]!.state, "free");
  assert.deepEqual(s.releasable.map((x) => x.id), ["b"]);
});

test("a terminating instance that never held a slot is released at once", () => {
  const s = serverStep({ slots: [], targets: [t("x", 1, { health: "leaving", lifecycleHook: "h" })], accepted: undefined, valve: {}, now: 0, cfg });
  assert.deepEqual(s.releasable.map((x) => x.id), ["x"]);
});
