import { test } from "node:test";
import assert from "node:assert/strict";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { Head, Slot } from "@hsdo/core";
import { headAttributes, leaseAttributes, parseHead, parseLease, parseSlot, slotAttributes, toItem } from "./items.ts";
import { assembleSnapshot } from "./snapshot.ts";

const head: Head = { generation: 5, epoch: 2, leader: "srv-a", updatedAt: 1_700_000_000_000, size: 4 };

test("slot, head and lease items are plain attributes and read back as they were", () => {
  const slot: Slot = { slot: 2, state: "ready", addr: "10.0.0.5", port: 8080, name: "i-0abc", group: "asg-a", az: "eu-west-1a", weight: 3, since: 1000, generation: 4, epoch: 2 };
  const item = toItem(slotAttributes("web", slot));
  assert.deepEqual(item.state, { S: "ready" });
  assert.deepEqual(item.port, { N: "8080" });
  assert.equal(Object.values(item).some((v) => "B" in v || "M" in v || "L" in v), false);
  const back = parseSlot(item, 2);
  assert.deepEqual(back, { ok: true, slot });

  const h = parseHead(toItem(headAttributes("web", head)));
  assert.deepEqual(h, { ok: true, value: head });

  const lease = { owner: "srv-a", epoch: 3, rvn: "r1", leaseMs: 10_000, renewedAt: 5 };
  assert.deepEqual(parseLease(toItem(leaseAttributes("web", lease))), { ok: true, value: lease });
});

test("malformed head and lease items give every problem, never a throw", () => {
  const h = parseHead(marshall({ pool: "web", slot: 0, generation: "5", epoch: -1, updatedAt: "now", size: 0 }));
  assert.equal(h.ok, false);
  if (!h.ok) {
    assert.deepEqual(h.problems, [
      'generation "5" is not an integer >= 0',
      "epoch -1 is not an integer >= 0",
      "leader (missing) is not a string",
      'updatedAt "now" is not a time in ms',
      "size 0 is not a slot count (expected 1..10000)",
    ]);
  }
  const l = parseLease(marshall({ pool: "web", slot: -1, owner: "", epoch: 1.5, rvn: 7, leaseMs: 0, released: "yes" }));
  assert.equal(l.ok, false);
  if (!l.ok) assert.equal(l.problems.length, 5);
  // A number JavaScript cannot hold exactly is a problem, not an exception.
  const big = parseHead({ ...marshall({ pool: "web", slot: 0 }), generation: { N: "1e300" } });
  assert.equal(big.ok, false);
  if (!big.ok) assert.match(big.problems[0] ?? "", /cannot be read: 1e300/);
  const huge = parseHead({ ...marshall({ ...headAttributes("web", head) }), generation: { N: "123456789012345678901234567890" } });
  assert.equal(huge.ok, false);
  if (!huge.ok) assert.deepEqual(huge.problems, ["generation 123456789012345678901234567890 is not an integer >= 0"]);
});

test("assembleSnapshot: exactly head.size slots, missing ones free, invalid ones free and listed, leftovers ignored", () => {
  const items = [
    toItem(slotAttributes("web", { slot: 1, state: "ready", addr: "10.0.0.1", name: "a", weight: 1, generation: 5 })),
    toItem({ pool: "web", slot: 3, state: "ready", addr: "10.0.0.3", name: "bad;name", weight: 1, generation: 2 }),
    toItem(slotAttributes("web", { slot: 9, state: "ready", addr: "10.0.0.9", name: "z", weight: 1, generation: 99 })),
  ];
  const a = assembleSnapshot("web", head, items);
  assert.equal(a.kind, "ok");
  if (a.kind !== "ok") return;
  assert.deepEqual(a.snapshot.slots.map((s) => [s.slot, s.state]), [[1, "ready"], [2, "free"], [3, "free"], [4, "free"]]);
  assert.deepEqual(a.snapshot.invalid.map((i) => i.slot), [3]);
  assert.match(a.snapshot.invalid[0]?.problems.join() ?? "", /name "bad;name"/);
});

test("assembleSnapshot: a slot newer than the head is a torn read, even when the item is invalid", () => {
  const torn = assembleSnapshot("web", head, [toItem({ pool: "web", slot: 4, state: "junk", generation: 6 })]);
  assert.deepEqual(torn, { kind: "torn", slot: 4, slotGeneration: 6, headGeneration: 5 });
});

test("a free item keeps its last occupant through the table, and an invalid item says whose it was", () => {
  const free = { slot: 3, state: "free" as const, weight: 0, last: "i-0abc", generation: 4, epoch: 2 };
  assert.deepEqual(parseSlot(toItem(slotAttributes("p", free)), 3), { ok: true, slot: free });
  const bad = toItem({ pool: "p", slot: 2, state: "ready", addr: "10.0.0.2", name: "i-2", weight: "heavy", generation: 5 });
  const assembled = assembleSnapshot("p", { ...head, size: 3 }, [bad]);
  assert.equal(assembled.kind, "ok");
  if (assembled.kind === "ok") {
    assert.deepEqual(assembled.snapshot.slots[1], { slot: 2, state: "free", weight: 0 });
    assert.deepEqual(assembled.snapshot.invalid, [{ slot: 2, problems: ['weight "heavy" is not a weight (expected 0..256)'], name: "i-2", addr: "10.0.0.2", state: "ready" }]);
  }
});
