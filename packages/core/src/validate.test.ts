import { test } from "node:test";
import assert from "node:assert/strict";
import { isIpLiteral, targetProblems, validateHead, validateSlot } from "./validate.ts";

test("isIpLiteral takes addresses HAProxy can send traffic to, and nothing else", () => {
  for (const ok of ["10.0.0.1", "192.168.1.254", "2001:db8::2", "::ffff:10.0.0.1", "fe80::1"]) assert.equal(isIpLiteral(ok), true, ok);
  for (const bad of [
    "0.0.0.0", // HAProxy: the client's original destination, a loop back to itself
    "::",
    "0:0:0:0:0:0:0:0",
    "255.255.255.255",
    "239.1.2.3",
    "ff02::1",
    "fe80::1%lo", // zone ids are refused by HAProxy
    "10.0.0.1; shutdown sessions",
    "10.0.0.1\nset server",
    " 10.0.0.1",
    "origin.example.com",
    "10.0.0",
    42,
    undefined,
  ]) {
    assert.equal(isIpLiteral(bad), false, String(bad));
  }
});

test("validateSlot reports every problem of an item, without throwing", () => {
  const r = validateSlot({ slot: 3, state: "ready", addr: "0.0.0.0", port: 70000, weight: 300, name: "a b", group: "g;x" });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.slot, 3);
    assert.equal(r.problems.length, 5, r.problems.join("; "));
  }
  assert.deepEqual(validateSlot({ slot: 2, state: "free" }), { ok: true, slot: { slot: 2, state: "free", weight: 0 } });
  assert.equal(validateSlot({ slot: 0, state: "ready" }).ok, false);
  assert.equal(validateSlot({ slot: 1, state: "gone" }).ok, false);
});

test("targetProblems names what would keep a target out of the table", () => {
  const base = { id: "i-1", addr: "10.0.0.1", group: "web", az: "eu-west-3a", launchedAt: 0, health: "ready" as const };
  assert.deepEqual(targetProblems(base), []);
  assert.match(targetProblems({ ...base, group: "my asg" }).join(), /group "my asg" is not a name/);
  assert.match(targetProblems({ ...base, addr: "" }).join(), /addr "" is not an IP address/);
  assert.deepEqual(targetProblems({ ...base, addr: "", health: "pending" }), [], "a pending target may have no address yet");
});

test("a free item may remember its last target; an invalid item carries only what passes its own check", () => {
  assert.deepEqual(validateSlot({ slot: 2, state: "free", last: "i-0abc" }), { ok: true, slot: { slot: 2, state: "free", weight: 0, last: "i-0abc" } });
  const badLast = validateSlot({ slot: 2, state: "free", last: "a;b" });
  assert.equal(badLast.ok, false);
  const r = validateSlot({ slot: 4, state: "ready", addr: "10.0.0.4", weight: "heavy", name: "i-4" });
  assert.deepEqual(r, { ok: false, slot: 4, problems: ['weight "heavy" is not a weight (expected 0..256)'], name: "i-4", addr: "10.0.0.4", state: "ready" });
  const unsafe = validateSlot({ slot: 5, state: "bogus", addr: "10.0.0.1; shutdown", name: "x y" });
  assert.ok(!unsafe.ok && unsafe.name === undefined && unsafe.addr === undefined && unsafe.state === undefined);
});

test("validateHead: one set of rules for the table's head item and the client's cached head", () => {
  const head = { generation: 3, epoch: 2, leader: "s1", updatedAt: 1_700_000_000_000, size: 4 };
  assert.deepEqual(validateHead(head), { ok: true, head });
  const bad = validateHead({ generation: -1, epoch: "2", updatedAt: "now", size: "4" });
  assert.equal(bad.ok, false);
  if (!bad.ok) {
    assert.deepEqual(bad.problems, [
      "generation -1 is not an integer >= 0",
      'epoch "2" is not an integer >= 0',
      "leader (missing) is not a string",
      'updatedAt "now" is not a time in ms',
      'size "4" is not a whole number (expected a slot count, 1..10000)',
    ]);
  }
  const empty = validateHead({ ...head, size: 0 });
  assert.deepEqual(empty.ok ? [] : empty.problems, ["size 0 is not a slot count (expected 1..10000)"]);
});
