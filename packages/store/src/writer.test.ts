import { test } from "node:test";
import assert from "node:assert/strict";
import { FencedOutError, HsdoError, LeaseLostError, ManualClock, type Head, type Slot } from "@hsdo/core";
import { LeaseKeeper } from "./lease.ts";
import { SlotReader } from "./reader.ts";
import { HEAD_SLOT } from "./table.ts";
import { createDynamoClient } from "./client.ts";
import { GenerationConflictError } from "./errors.ts";
import { fileBed, poolItems, putRaw, recorder, startDynamoRelay, uniqueName, waitFor, type RelayedRequest } from "@hsdo/testkit";
import { FencedWriter, planPublication, type WriteTerm } from "./writer.ts";

const { client, table, dynalite } = await fileBed("writer");

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
      [3, "free", undefined, undefined, 2],
      [4, "free", undefined, undefined, 2],
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
  // One write in flight at a time, so "at once" is exact: with more, the writes already sent cannot be recalled, and no new one starts.
  const w = writer(pool, "srv-a", { observe: rec.observe, concurrency: 1 });
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
  for (const k of [9, 10]) assert.equal(items.get(k), undefined, `slot ${k} of a cold-started pool was written though never used`);

  const snap = await new SlotReader({ client, table, pool }).snapshot();
  assert.equal(snap?.head.generation, 2);
  assert.equal(snap?.slots[6]?.addr, "10.0.0.70");
});

test("a dry run plans the writes publish would send (planPublication) and sends none", async () => {
  const pool = uniqueName("p");
  const w = writer(pool, "srv-a");
  const t1 = term(1);
  const base = (await w.stampEpoch(t1, 3)).head;
  const before = await poolItems(client, table, pool);
  const rec = recorder();
  const result = planPublication(pool, "srv-a", t1.epoch, { base, changed: [ready(2, 2)] }, Date.now());
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

test("stamping an empty pool writes the head only (generation 0, which readers take as nothing published), whatever its size", async () => {
  const pool = uniqueName("p");
  const rec = recorder();
  const stamped = await writer(pool, "srv-a", { observe: rec.observe }).stampEpoch(term(3), 500);
  assert.equal(stamped.head.generation, 0);
  assert.equal(stamped.head.epoch, 3);
  assert.equal(stamped.slots.length, 500);
  assert.ok(stamped.slots.every((s) => s.state === "free"));
  // No head before: no leader ever finished a stamp, so no slot write can be in flight anywhere, and missing items need no stamp.
  assert.deepEqual(
    rec.calls.map((c) => c.operation),
    ["head.stamp", "pool.query"],
  );
  const items = await poolItems(client, table, pool);
  assert.deepEqual([...items.keys()], [HEAD_SLOT]);
  assert.equal(await new SlotReader({ client, table, pool }).snapshot(), undefined);
});

test("a takeover of a pool with a head creates its missing slot items, so a deposed leader's late write to them is fenced too", async () => {
  const pool = uniqueName("p");
  const a = writer(pool, "srv-a");
  const termA = term(1);
  const baseA = (await a.stampEpoch(termA, 4)).head;
  await a.publish(termA, { base: baseA, changed: [ready(1, 1)] });
  const stamped = await writer(pool, "srv-b").stampEpoch(term(2), 4);
  const items = await poolItems(client, table, pool);
  assert.deepEqual([...items.keys()], [HEAD_SLOT, 1, 2, 3, 4]);
  assert.deepEqual(items.get(3), { pool, slot: 3, state: "free", weight: 0, epoch: 2 });
  // srv-a, deposed, publishes slot 3 (its write was in flight at the takeover): refused.
  await assert.rejects(writer(pool, "srv-a").publish(termA, { base: { ...baseA, generation: 1 }, changed: [ready(3, 3)] }), FencedOutError);
  assert.equal((await poolItems(client, table, pool)).get(3)?.state, "free");
  assert.equal(stamped.head.generation, 1);
});

/** A client through a relay that can hold requests or lose answers; the SDK retries a timed-out request like in production. */
async function relayed(t: { after(fn: () => unknown): void }, maxAttempts = 3) {
  const relay = await startDynamoRelay(dynalite.endpoint);
  t.after(() => relay.close());
  const viaRelay = createDynamoClient({ endpoint: relay.endpoint, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" }, maxAttempts, requestTimeoutMs: 1500 });
  t.after(() => viaRelay.destroy());
  return { relay, viaRelay };
}

/** The relay rule matching the PutItem of `slot` with `generation` (first attempt only, when `once`). */
function putOf(slot: number, generation: number): (r: RelayedRequest) => boolean {
  return (r) => {
    const item = r.body.Item as Record<string, { N?: string }> | undefined;
    return r.operation === "PutItem" && item?.slot?.N === String(slot) && item?.generation?.N === String(generation);
  };
}

test("same-epoch fence: a slot write of generation G that lands late, after G+1 and G+2 were published, is refused; readers never see it", async (t) => {
  const pool = uniqueName("p");
  const { relay, viaRelay } = await relayed(t);
  const w = new FencedWriter({ client: viaRelay, table, pool, leader: "srv-a", clock: new ManualClock() });
  const t1 = term(1);
  let head = (await w.publish(t1, { base: (await w.stampEpoch(t1, 3)).head, changed: [ready(1, 1)] })).head;
  // Generation 2's first attempt at slot 1 is held in the network; the SDK times out and its retry lands.
  let heldOnce = false;
  const g2 = putOf(1, 2);
  relay.rule = (r) => (g2(r) && !heldOnce ? ((heldOnce = true), "hold") : "pass");
  head = (await w.publish(t1, { base: head, changed: [ready(1, 2)] })).head;
  assert.equal(head.generation, 2);
  assert.equal(relay.held.length, 1);
  head = (await w.publish(t1, { base: head, changed: [ready(1, 3)] })).head;
  head = (await w.publish(t1, { base: head, changed: [ready(2, 4)] })).head;
  assert.equal(head.generation, 4);

  // Seen by readers all along: slot 1 only ever moves forward.
  const reader = new SlotReader({ client, table, pool });
  const addrs: string[] = [];
  let reading = true;
  const watching = (async () => {
    while (reading) {
      const snap = await reader.snapshot();
      if (snap) addrs.push(`${snap.head.generation}:${snap.slots[0]?.addr}`);
    }
  })();
  await waitFor("the reader read the pool", () => addrs.length > 0);
  const late = await relay.held[0]!.release();
  assert.equal(late.status, 400);
  assert.match(late.body, /ConditionalCheckFailed/);
  await waitFor("the reader read the pool after the late write", () => addrs.length > 3);
  reading = false;
  await watching;
  assert.deepEqual([...new Set(addrs)], ["4:10.0.0.3"], "readers saw only the newest state");
  const items = await poolItems(client, table, pool);
  assert.equal(items.get(1)?.addr, "10.0.0.3");
  assert.equal(items.get(1)?.generation, 3);
});

test("same-epoch fence: a retried write whose first attempt landed (answer lost) counts as written", async (t) => {
  const pool = uniqueName("p");
  const { relay, viaRelay } = await relayed(t);
  const rec = recorder();
  const w = new FencedWriter({ client: viaRelay, table, pool, leader: "srv-a", clock: new ManualClock(), observe: rec.observe });
  const t1 = term(1);
  const base = (await w.stampEpoch(t1, 3)).head;
  const lostOf = new Set<string>();
  const slot2 = putOf(2, 1);
  const headG1 = putOf(HEAD_SLOT, 1);
  relay.rule = (r) => {
    const which = slot2(r) ? "slot2" : headG1(r) ? "head" : undefined;
    if (which === undefined || lostOf.has(which)) return "pass";
    lostOf.add(which);
    return "swallow";
  };
  const result = await w.publish(t1, { base, changed: [ready(1, 1), ready(2, 2)] });
  assert.equal(result.head.generation, 1);
  assert.equal(lostOf.size, 2, "the first answer of slot 2 and of the head were lost");
  assert.equal(relay.seen.filter((r) => slot2(r)).length, 2, "the SDK sent slot 2 again");
  assert.equal(rec.count("slot.write", "conditional_failed"), 1, "the retry was refused by the fence...");
  assert.equal(rec.count("head.write", "conditional_failed"), 1);
  assert.equal(rec.count("fence.evidence"), 2, "...and read back");
  const snap = await new SlotReader({ client, table, pool }).snapshot();
  assert.equal(snap?.head.generation, 1);
  assert.equal(snap?.slots[1]?.addr, "10.0.0.2");
  // The writer is settled: the next publication goes on from this head.
  assert.equal((await w.publish(t1, { base: result.head, changed: [ready(3, 3)] })).head.generation, 2);
});

test("same-epoch fence: the same generation with other content is a conflict, not a success, and the next stamp reads the table back", async () => {
  const pool = uniqueName("p");
  const w = writer(pool, "srv-a");
  const t1 = term(1);
  const base = (await w.publish(t1, { base: (await w.stampEpoch(t1, 3)).head, changed: [ready(1, 1)] })).head;
  // Another write of this epoch already put generation 2 into slot 2 (an abandoned publication's request, landed late).
  await putRaw(client, table, { pool, ...ready(2, 9), generation: 2, epoch: 1 });
  const err = await w.publish(t1, { base, changed: [ready(2, 2)] }).then(
    () => assert.fail("a write over the same generation with other content landed"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof GenerationConflictError, String(err));
  assert.equal(err.slot, 2);
  assert.equal(err.storedGeneration, 2);
  assert.equal((await poolItems(client, table, pool)).get(2)?.addr, "10.0.0.9");
  const resumed = await w.stampEpoch(t1, 3);
  assert.ok(resumed.head.generation >= 2);
  assert.equal((await w.publish(t1, { base: resumed.head, changed: [ready(2, 2)] })).head.generation, resumed.head.generation + 1);
  assert.equal((await poolItems(client, table, pool)).get(2)?.addr, "10.0.0.2");
});

test("a publication that failed part-way is sealed by the next stamp: its write still in flight is refused when it lands", async (t) => {
  const pool = uniqueName("p");
  // One attempt: the held write makes the publish fail (a request timeout), while the request itself is still "in the network".
  const { relay, viaRelay } = await relayed(t, 1);
  const w = new FencedWriter({ client: viaRelay, table, pool, leader: "srv-a", clock: new ManualClock() });
  const t1 = term(1);
  const base = (await w.publish(t1, { base: (await w.stampEpoch(t1, 3)).head, changed: [ready(1, 1)] })).head;
  const slot3 = putOf(3, 2);
  relay.rule = (r) => (slot3(r) ? "hold" : "pass");
  await assert.rejects(w.publish(t1, { base, changed: [ready(2, 2), ready(3, 3)] }));
  relay.rule = () => "pass";
  const resumed = await w.stampEpoch(t1, 3);
  assert.equal(resumed.head.generation, 2, "the sealed slots rolled the head forward");
  assert.equal(resumed.slots[2]?.state, "free", "slot 3 was missing: sealed as free");
  // The leader carries on without slot 3's target; then the old request lands.
  const next = await w.publish(t1, { base: resumed.head, changed: [ready(1, 5)] });
  const late = await relay.held[0]!.release();
  assert.match(late.body, /ConditionalCheckFailed/);
  const snap = await new SlotReader({ client, table, pool }).snapshot();
  assert.equal(snap?.head.generation, next.head.generation);
  assert.equal(snap?.slots[2]?.state, "free", "the abandoned write never appeared");
});
