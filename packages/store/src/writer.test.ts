import { test } from "node:test";
import assert from "node:assert/strict";
import { FencedOutError, HsdoError, LeaseLostError, ManualClock, type Head, type Slot } from "@hsdo/core";
import { LeaseKeeper } from "./lease.ts";
import { SlotReader } from "./reader.ts";
import { HEAD_SLOT } from "./table.ts";
import { fileBed, poolItems, putRaw, recorder, uniqueName } from "@hsdo/testkit";
import { FencedWriter, type WriteTerm } from "./writer.ts";

const { client, table } = await fileBed("writer");

function term(epoch: number, controller = new AbortController()): WriteTerm {
  return { epoch, signal: controller.signal };
}

function writer(pool: string, leader: string, extra: Partial<ConstructorParameters<typeof FencedWriter>[0]> = {}): FencedWriter {
  return new FencedWriter({ client, table, pool, leader, clock: new ManualClock(), ...extra });
}

function ready(slot: number, last: number, weight = 1): Slot {
  return { slot, state: "ready", addr: `10.0.0.${last}`, port: 8080, name: `i-${last}`, group: "asg-a", az: "eu-west-1a", weight, since: 1000 };
}

test("a leader deposed by a newer epoch's stamp is fenced out, and nothing of its publish lands", async () => {
  const pool = uniqueName("p");
  const a = writer(pool, "srv-a");
  const termA = term(1);
  const stampedA = await a.stampEpoch(termA, 4);
  assert.equal(stampedA.head.generation, 0);
  const publishedA = await a.publish(termA, { base: stampedA.head, changed: [ready(1, 1), ready(2, 2)] });
  assert.equal(publishedA.head.generation, 1);

  const b = writer(pool, "srv-b");
  const stampedB = await b.stampEpoch(term(2), 4);
  // The new leader continues from the table's slots.
  assert.deepEqual(
    stampedB.slots.map((s) => [s.slot, s.state, s.addr, s.generation, s.epoch]),
    [
      [1, "ready", "10.0.0.1", 1, 2],
      [2, "ready", "10.0.0.2", 1, 2],
      [3, "free", undefined, 0, 2],
      [4, "free", undefined, 0, 2],
    ],
  );
  assert.deepEqual({ ...stampedB.head, updatedAt: 0 }, { generation: 1, epoch: 2, leader: "srv-b", updatedAt: 0, size: 4 });
  const before = await poolItems(client, table, pool);

  for (const changed of [[ready(1, 1, 5), ready(3, 3)], [ready(4, 4)], []]) {
    // A fresh writer each time: after a failed publish, a writer refuses to publish before a new stamp.
    const err = await writer(pool, "srv-a").publish(termA, { base: publishedA.head, changed }).then(
      () => assert.fail("a deposed leader's publish landed"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FencedOutError);
    assert.equal(err.ourEpoch, 1);
    assert.equal(err.storedEpoch, 2);
    assert.equal(err.slot, changed[0]?.slot ?? HEAD_SLOT);
  }
  assert.deepEqual(await poolItems(client, table, pool), before);
  // Nor can it stamp again.
  await assert.rejects(a.stampEpoch(termA, 4), FencedOutError);
  assert.deepEqual(await poolItems(client, table, pool), before);
});

test("with real lease keepers: the deposed leader's signal stops its publish before any send", async (t) => {
  const pool = uniqueName("p");
  const clockA = new ManualClock();
  const clockB = new ManualClock(0, 5_000_000);
  const opts = { client, table, pool, leaseMs: 60_000, safetyMarginMs: 12_000 };
  const leaseA = new LeaseKeeper({ ...opts, owner: "srv-a", clock: clockA });
  const leaseB = new LeaseKeeper({ ...opts, owner: "srv-b", clock: clockB });
  t.after(() => leaseA.stop());
  t.after(() => leaseB.stop());
  const statusA = await leaseA.tick();
  assert.equal(statusA.role, "leader");
  if (statusA.role !== "leader") return;
  const rec = recorder();
  const a = writer(pool, "srv-a", { observe: rec.observe });
  const base = (await a.stampEpoch(statusA.term, 3)).head;
  await a.publish(statusA.term, { base, changed: [ready(1, 1)] });

  await leaseB.tick();
  clockB.advance(60_000);
  const statusB = await leaseB.tick();
  assert.equal(statusB.role, "leader");
  if (statusB.role !== "leader") return;
  await writer(pool, "srv-b").stampEpoch(statusB.term, 3);

  const lost = await leaseA.tick();
  assert.equal(lost.role, "standby");
  assert.equal(statusA.term.signal.aborted, true);
  const sent = rec.calls.length;
  await assert.rejects(a.publish(statusA.term, { base, changed: [ready(2, 2)] }), LeaseLostError);
  assert.equal(rec.calls.length, sent, "not one request after the term ended");
});

test("an abort in the middle of a publish stops it at once: the remaining slots and the head are untouched", async () => {
  const pool = uniqueName("p");
  const controller = new AbortController();
  const rec = recorder((entry) => {
    if (entry.operation === "slot.write" && entry.outcome === "ok") controller.abort(new LeaseLostError("srv-a", "test"));
  });
  const w = writer(pool, "srv-a", { observe: rec.observe });
  const t1 = term(1, controller);
  const base = (await w.stampEpoch(t1, 5)).head;
  const before = await poolItems(client, table, pool);
  await assert.rejects(w.publish(t1, { base, changed: [ready(1, 1), ready(2, 2), ready(3, 3)] }), LeaseLostError);
  assert.equal(rec.count("slot.write"), 1);
  assert.equal(rec.count("head.write"), 0);
  const after = await poolItems(client, table, pool);
  assert.equal(after.get(1)?.state, "ready");
  assert.equal(after.get(1)?.generation, 1);
  for (const k of [HEAD_SLOT, 2, 3, 4, 5]) assert.deepEqual(after.get(k), before.get(k), `item ${k} was touched`);

  // Slot 1 landed unknown to `base`: no publish from that base until the table was read back.
  const t2 = term(1);
  await assert.rejects(w.publish(t2, { base, changed: [ready(2, 2)] }), /failed part-way; call stampEpoch again/);
  const resumed = await w.stampEpoch(t2, 5);
  assert.equal(resumed.head.generation, 1, "the half-published slot 1 became generation 1, whole");
  assert.equal(resumed.slots[0]?.addr, "10.0.0.1");
  const next = await w.publish(t2, { base: resumed.head, changed: [ready(2, 2)] });
  assert.equal(next.head.generation, 2);
});

test("publish writes only the changed slots, each with generation G+1, then the head last", async () => {
  const pool = uniqueName("p");
  const rec = recorder();
  const w = writer(pool, "srv-a", { observe: rec.observe });
  const t1 = term(1);
  const stamped = await w.stampEpoch(t1, 10);
  let base: Head = (await w.publish(t1, { base: stamped.head, changed: [1, 2, 3, 4, 5, 6, 7, 8].map((k) => ready(k, k)) })).head;
  assert.equal(base.generation, 1);
  rec.calls.length = 0;

  const result = await w.publish(t1, { base, changed: [ready(7, 70), { slot: 3, state: "drain", addr: "10.0.0.3", port: 8080, name: "i-3", weight: 1, drainUntil: 99 }] });
  assert.deepEqual(
    rec.calls.map((c) => [c.operation, c.outcome]),
    [
      ["slot.write", "ok"],
      ["slot.write", "ok"],
      ["head.write", "ok"],
    ],
  );
  assert.ok(rec.calls.every((c) => typeof c.consumedCapacity === "number" && c.consumedCapacity > 0), "consumed capacity is reported");
  assert.deepEqual(result.writes.map((x) => x.slot), [3, 7, HEAD_SLOT]);
  assert.equal(result.head.generation, 2);
  base = result.head;

  const items = await poolItems(client, table, pool);
  assert.equal(items.get(HEAD_SLOT)?.generation, 2);
  assert.equal(items.get(3)?.generation, 2);
  assert.equal(items.get(3)?.state, "drain");
  assert.equal(items.get(7)?.addr, "10.0.0.70");
  assert.equal(items.get(7)?.generation, 2);
  for (const k of [1, 2, 4, 5, 6, 8]) assert.equal(items.get(k)?.generation, 1, `slot ${k} was rewritten`);
  for (const k of [9, 10]) assert.equal(items.get(k)?.generation, 0);

  const snap = await new SlotReader({ client, table, pool }).snapshot();
  assert.equal(snap?.head.generation, 2);
  assert.equal(snap?.slots[6]?.addr, "10.0.0.70");
});

test("dryRun returns the writes it would send and sends none", async () => {
  const pool = uniqueName("p");
  const w = writer(pool, "srv-a");
  const t1 = term(1);
  const base = (await w.stampEpoch(t1, 3)).head;
  const before = await poolItems(client, table, pool);
  const rec = recorder();
  const dry = writer(pool, "srv-a", { observe: rec.observe, dryRun: true });
  const result = await dry.publish(t1, { base, changed: [ready(2, 2)] });
  assert.equal(result.dryRun, true);
  assert.deepEqual(result.writes.map((x) => [x.slot, x.attributes.generation]), [
    [2, 1],
    [HEAD_SLOT, 1],
  ]);
  assert.equal(result.writes[0]?.attributes.addr, "10.0.0.2");
  assert.equal(result.writes[0]?.attributes.epoch, 1);
  assert.equal(rec.calls.length, 0);
  assert.deepEqual(await poolItems(client, table, pool), before);
});

test("publish refuses slots it must not write, before writing anything", async () => {
  const pool = uniqueName("p");
  const rec = recorder();
  const w = writer(pool, "srv-a", { observe: rec.observe });
  const t1 = term(1);
  const base = (await w.stampEpoch(t1, 3)).head;
  rec.calls.length = 0;
  await assert.rejects(w.publish(t1, { base, changed: [ready(1, 1), { ...ready(2, 2), addr: "10.0.0.2; shutdown" }] }), (err: unknown) => {
    assert.ok(err instanceof HsdoError);
    assert.match(err.message, /slot 2 would be written invalid: addr "10.0.0.2; shutdown" is not an IP address/);
    return true;
  });
  await assert.rejects(w.publish(t1, { base, changed: [ready(4, 4)] }), /slot 4 is outside the pool \(1..3\)/);
  await assert.rejects(w.publish(t1, { base, changed: [ready(1, 1), ready(1, 2)] }), /slot 1 appears twice/);
  assert.equal(rec.calls.length, 0);
});

test("stamping repairs a publication its writer died in the middle of: the head catches up with the newest slot", async () => {
  const pool = uniqueName("p");
  const a = writer(pool, "srv-a");
  const t1 = term(1);
  const base = (await a.publish(t1, { base: (await a.stampEpoch(t1, 3)).head, changed: [ready(1, 1)] })).head;
  // srv-a wrote slot 2 of generation 2, then died before the head.
  await putRaw(client, table, { pool, ...ready(2, 2), generation: 2, epoch: 1 });
  const reader = new SlotReader({ client, table, pool, maxAttempts: 2, retryDelayMs: 1 });
  await assert.rejects(reader.snapshot(), /torn read/);

  const stamped = await writer(pool, "srv-b").stampEpoch(term(2), 3);
  assert.equal(stamped.head.generation, 2);
  assert.equal(stamped.slots[1]?.addr, "10.0.0.2");
  const snap = await reader.snapshot();
  assert.deepEqual(snap, stamped);
  assert.equal(base.generation, 1);
});

test("stamping a grown pool resets leftover items beyond the published size to free and bumps the generation", async () => {
  const pool = uniqueName("p");
  const a = writer(pool, "srv-a");
  const t1 = term(1);
  await a.publish(t1, { base: (await a.stampEpoch(t1, 3)).head, changed: [ready(1, 1), ready(3, 3)] });
  // A leftover of a larger pool long ago: it must not come back to life.
  await putRaw(client, table, { pool, ...ready(5, 5), generation: 1, epoch: 1 });
  const stamped = await writer(pool, "srv-b").stampEpoch(term(2), 5);
  assert.equal(stamped.head.size, 5);
  assert.equal(stamped.head.generation, 2);
  assert.deepEqual(stamped.slots.map((s) => s.state), ["ready", "free", "ready", "free", "free"]);
  const items = await poolItems(client, table, pool);
  assert.equal(items.get(5)?.state, "free");
  assert.equal(items.get(5)?.addr, undefined);
  assert.deepEqual(await new SlotReader({ client, table, pool }).snapshot(), stamped);
});

test("stamping an empty pool creates free slots and a head of generation 0, which readers take as nothing published", async () => {
  const pool = uniqueName("p");
  const stamped = await writer(pool, "srv-a").stampEpoch(term(3), 2);
  assert.equal(stamped.head.generation, 0);
  assert.equal(stamped.head.epoch, 3);
  const items = await poolItems(client, table, pool);
  assert.deepEqual([...items.keys()], [HEAD_SLOT, 1, 2]);
  assert.deepEqual(items.get(1), { pool, slot: 1, state: "free", weight: 0, generation: 0, epoch: 3 });
  assert.equal(await new SlotReader({ client, table, pool }).snapshot(), undefined);
});
