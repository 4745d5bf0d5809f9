import { test } from "node:test";
import assert from "node:assert/strict";
import { absent, epochIs, epochNotAbove, expression, generationBelow, ownerIs, poolFrom, rvnIs, sealable } from "./conditions.ts";

test("clauses merge into one expression with #name placeholders for reserved words", () => {
  const e = expression({
    condition: [ownerIs("srv-a"), epochIs(4)],
    set: { rvn: "r2", state: "ready", size: 3 },
    setIfAbsent: { name: "x" },
  });
  assert.equal(e.ConditionExpression, "#owner = :owner AND #epoch = :epoch");
  assert.equal(e.UpdateExpression, "SET #rvn = :set_rvn, #state = :set_state, #size = :set_size, #name = if_not_exists(#name, :init_name)");
  assert.deepEqual(e.ExpressionAttributeNames, {
    "#owner": "owner",
    "#epoch": "epoch",
    "#rvn": "rvn",
    "#state": "state",
    "#size": "size",
    "#name": "name",
  });
  assert.deepEqual(e.ExpressionAttributeValues, {
    ":owner": { S: "srv-a" },
    ":epoch": { N: "4" },
    ":set_rvn": { S: "r2" },
    ":set_state": { S: "ready" },
    ":set_size": { N: "3" },
    ":init_name": { S: "x" },
  });
  // No reserved word appears bare in any expression text.
  for (const text of [e.ConditionExpression, e.UpdateExpression]) {
    assert.doesNotMatch(text ?? "", /(^|[^#:_\w])(owner|state|size|name|pool|group)\b/);
  }
});

test("the fence clause allows an absent epoch or one not above ours", () => {
  const e = expression({ condition: [epochNotAbove(7)] });
  assert.equal(e.ConditionExpression, "(attribute_not_exists(#epoch) OR #epoch <= :maxEpoch)");
  assert.deepEqual(e.ExpressionAttributeValues, { ":maxEpoch": { N: "7" } });
});

test("absent and rvnIs, and a key condition for a pool", () => {
  assert.equal(expression({ condition: [absent()] }).ConditionExpression, "attribute_not_exists(#pool)");
  assert.equal(expression({ condition: [absent()] }).ExpressionAttributeValues, undefined);
  assert.equal(expression({ condition: [rvnIs("abc")] }).ExpressionAttributeValues?.[":rvn"]?.S, "abc");
  const q = expression({ key: poolFrom("web", 0) });
  assert.equal(q.KeyConditionExpression, "#pool = :pool AND #slot >= :fromSlot");
  assert.deepEqual(q.ExpressionAttributeValues, { ":pool": { S: "web" }, ":fromSlot": { N: "0" } });
});

test("a placeholder bound to two different values is refused", () => {
  assert.throws(() => expression({ condition: [epochIs(1), epochIs(2)] }), /:epoch bound to both 1 and 2/);
  // The same clause twice is harmless.
  assert.equal(expression({ condition: [epochIs(1), epochIs(1)] }).ConditionExpression, "#epoch = :epoch AND #epoch = :epoch");
  assert.throws(() => expression({ set: { "a.b": 1 } }), /not a plain attribute name/);
});

test("the same-epoch fence: a strictly greater generation within the epoch, anything over an older epoch", () => {
  const e = expression({ condition: [epochNotAbove(7), generationBelow(12, 7)] });
  assert.equal(
    e.ConditionExpression,
    "(attribute_not_exists(#epoch) OR #epoch <= :maxEpoch) AND (attribute_not_exists(#generation) OR #generation < :generation OR #epoch < :maxEpoch)",
  );
  assert.deepEqual(e.ExpressionAttributeValues, { ":maxEpoch": { N: "7" }, ":generation": { N: "12" } });
  assert.equal(
    expression({ condition: [sealable(7, 12)] }).ConditionExpression,
    "(attribute_not_exists(#pool) OR (#epoch = :sealEpoch AND #generation < :generation))",
  );
});
