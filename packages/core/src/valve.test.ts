import { test } from "node:test";
import assert from "node:assert/strict";
import type { Slot, Target } from "./model.ts";
import { safetyValve, type ValveState } from "./valve.ts";

const slot = (n: number, name: string): Slot => ({ slot: n, state: "ready", addr: `10.0.0.${n}`, name, weight: 10 });
const target = (id: string): Target => ({ id, addr: "10.0.0.1", group: "g", az: "a", launchedAt: 0, health: "ready" });
const slots = [slot(1, "a"), slot(2, "b"), slot(3, "c"), slot(4, "d")];
const cfg = { maxRemovalFraction: 0.5, confirmTicks: 3 };

test("small removals pass at once", () => {
  const d = safetyValve(slots, ["a", "b", "c"].map(target), {}, cfg);
  assert.equal(d.accept, true);
  assert.equal(d.removing, 1);
  assert.equal(d.live, 4);
});

test("an empty answer is held until it repeats confirmTicks times in a row", () => {
  let state: ValveState = {};
  const results: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    const d = safetyValve(slots, [], state, cfg);
    results.push(d.accept);
    state = d.state;
  }
  assert.deepEqual(results, [false, false, true]);
});

test("a different large-removal answer restarts the count", () => {
  let d = safetyValve(slots, [target("a")], {}, cfg);
  d = safetyValve(slots, [target("a")], d.state, cfg);
  assert.equal(d.accept, false);
  d = safetyValve(slots, [target("b")], d.state, cfg);
  assert.equal(d.accept, false);
  assert.equal(d.state.held?.seen, 1);
});

test("exactly the fraction passes; with no live target anything passes", () => {
  assert.equal(safetyValve(slots, ["a", "b"].map(target), {}, cfg).accept, true);
  assert.equal(safetyValve([], [], {}, cfg).accept, true);
});

test("confirmTicks 1 turns the valve off", () => {
  assert.equal(safetyValve(slots, [], {}, { ...cfg, confirmTicks: 1 }).accept, true);
});
