import { test } from "node:test";
import assert from "node:assert/strict";
import { rampWeight } from "./ramp.ts";

const hsdo = { min: 1, max: 10, step: 1, intervalMs: 30_000 };

test("ramp follows HSDO's defaults: +1 every 30 s from 1 up to 10", () => {
  const since = 1_000_000;
  const table: [number, number][] = [
    [0, 1],
    [29_999, 1],
    [30_000, 2],
    [59_999, 2],
    [60_000, 3],
    [8 * 30_000, 9],
    [9 * 30_000, 10],
    [100 * 30_000, 10],
    [-5_000, 1], // a clock that moved back never gives less than min
  ];
  for (const [elapsed, weight] of table) {
    assert.equal(rampWeight(since, since + elapsed, hsdo), weight, `after ${elapsed} ms`);
  }
});

test("ramp with a larger step stops exactly at max", () => {
  const w = { min: 2, max: 7, step: 3, intervalMs: 1000 };
  assert.deepEqual([0, 1000, 2000, 3000].map((t) => rampWeight(0, t, w)), [2, 5, 7, 7]);
});

test("a zero interval or min >= max means full weight at once", () => {
  assert.equal(rampWeight(0, 0, { ...hsdo, intervalMs: 0 }), 10);
  assert.equal(rampWeight(0, 0, { ...hsdo, min: 10 }), 10);
});

