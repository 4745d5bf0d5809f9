import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, type Head, type Slot, type Snapshot } from "@hsdo/core";
import { MalformedItemError, TornReadError } from "./errors.ts";
import { SlotReader } from "./reader.ts";
import { HEAD_SLOT } from "./table.ts";
import { fileBed, putAttributeValues, putRaw, recorder, uniqueName } from "@hsdo/testkit";
import { FencedWriter, type WriteTerm } from "./writer.ts";

const { client, table } = await fileBed("reader");

const term: WriteTerm = { epoch: 1, signal: new AbortController().signal };

function ready(slot: number, last: number, weight = 1): Slot {
  return { slot, state: "ready", addr: `10.1.${Math.floor(last / 250)}.${last % 250}`, port: 80, name: `i-${last}`, group: "g", az: "az1", weight, since: 5 };
}

async function publishedPool(pool: string, size: number, changed: Slot[]): Promise<{ writer: FencedWriter; head: Head }> {
  const writer = new FencedWriter({ client, table, pool, leader: "srv-a", clock: new ManualClock() });
  const stamped = await writer.stampEpoch(term, size);
  const { head } = await writer.publish(term, { base: stamped.head, changed });
  return { writer, head };
}

test("a pool with no head is no snapshot", async () => {
  const reader = new SlotReader({ client, table, pool: uniqueName("p") });
  assert.equal(await reader.head(), undefined);
  assert.equal(await reader.snapshot(), undefined);
  assert.deepEqual(await reader.poll(), { changed: false, head: undefined });
});

test("the snapshot is what was published, read across several Query pages", async () => {
  const pool = uniqueName("p");
  const { head } = await publishedPool(pool, 7, [ready(1, 1), ready(4, 4, 7), ready(7, 7)]);
  const rec = recorder();
  const reader = new SlotReader({ client, table, pool, pageSize: 2, observe: rec.observe });
  const snap = await reader.snapshot();
  // A cold start writes no free items: the head and the three published slots, in pages of 2.
  assert.ok(rec.count("pool.query") >= 2, `${rec.count("pool.query")} pages for 4 items of 2`);
  assert.deepEqual(snap?.head, head);
  assert.equal(snap?.slots.length, 7);
  assert.deepEqual(snap?.slots[3], { ...ready(4, 4, 7), generation: 1, epoch: 1 });
  assert.deepEqual(snap?.slots.map((s) => s.state), ["ready", "free", "free", "ready", "free", "free", "ready"]);
  assert.deepEqual(snap?.invalid, []);
});

test("malformed slot items end in `invalid` with their problems, as free slots; the read does not throw", async () => {
  const pool = uniqueName("p");
  await publishedPool(pool, 7, [ready(7, 7)]);
  const base = { pool, state: "ready", port: 80, name: "i-x", weight: 1, generation: 1 };
  await putRaw(client, table, { ...base, slot: 1, addr: "not-an-ip" });
  await putRaw(client, table, { ...base, slot: 2, addr: "10.1.0.2", name: "a;b" });
  await putRaw(client, table, { ...base, slot: 3, addr: "10.1.0.3", port: 70000 });
  await putRaw(client, table, { ...base, slot: 4, addr: "10.1.0.4", weight: "ten", state: 3 });
  await putRaw(client, table, { ...base, slot: 5, addr: 10, name: ["x"] });
  await putAttributeValues(client, table, { pool: { S: pool }, slot: { N: "6" }, state: { S: "ready" }, weight: { N: "123456789012345678901.5" } });
  const snap = await new SlotReader({ client, table, pool }).snapshot();
  assert.ok(snap);
  assert.deepEqual(snap.invalid.map((i) => i.slot), [1, 2, 3, 4, 5, 6]);
  const problems = new Map(snap.invalid.map((i) => [i.slot, i.problems.join("; ")]));
  assert.match(problems.get(1) ?? "", /addr "not-an-ip" is not an IP address/);
  assert.match(problems.get(2) ?? "", /name "a;b" is not a name/);
  assert.match(problems.get(3) ?? "", /port 70000 is not a port/);
  assert.match(problems.get(4) ?? "", /state 3 is not one of free, ready, drain/);
  assert.match(problems.get(5) ?? "", /addr 10 is not an IP address.*name x is not a name/);
  assert.match(problems.get(6) ?? "", /cannot be read/);
  assert.deepEqual(snap.slots.slice(0, 6).map((s) => s.state), ["free", "free", "free", "free", "free", "free"]);
  assert.equal(snap.slots[6]?.addr, "10.1.0.7");
});

test("a malformed head item is a clear error naming the item, from head() and snapshot()", async () => {
  const pool = uniqueName("p");
  await putRaw(client, table, { pool, slot: HEAD_SLOT, generation: "one", epoch: 1, leader: "x", updatedAt: 1, size: 2 });
  const reader = new SlotReader({ client, table, pool });
  for (const read of [() => reader.head(), () => reader.snapshot()]) {
    const err = await read().then(
      () => assert.fail("a malformed head was accepted"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof MalformedItemError);
    assert.match(err.message, new RegExp(`pool "${pool}", slot 0 \\(head item\\) is malformed: generation "one" is not an integer >= 0`));
  }
});

test("a torn read is retried and never returned; once the head is written the new state is", async () => {
  const pool = uniqueName("p");
  const { head } = await publishedPool(pool, 3, [ready(1, 1), ready(2, 2)]);
  // Generation 2 half-way: a slot is written, the head not yet.
  await putRaw(client, table, { pool, ...ready(2, 22), generation: 2, epoch: 1 });
  const rec = recorder();
  const reader = new SlotReader({ client, table, pool, maxAttempts: 3, retryDelayMs: 1, observe: rec.observe });
  const err = await reader.snapshot().then(
    (s) => assert.fail(`a torn read was returned: ${JSON.stringify(s)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TornReadError);
  assert.equal(err.attempts, 3);
  assert.equal(err.slot, 2);
  assert.equal(err.slotGeneration, 2);
  assert.equal(err.headGeneration, 1);
  assert.equal(rec.count("pool.query"), 3);

  // The writer finishes while the reader retries: the reader returns generation 2, whole.
  let queries = 0;
  const finishing = new SlotReader({
    client,
    table,
    pool,
    maxAttempts: 10,
    retryDelayMs: 1,
    observe: (op) => {
      if (op === "pool.query" && ++queries === 2) {
        void putRaw(client, table, { pool, slot: HEAD_SLOT, ...head, generation: 2 });
      }
    },
  });
  const snap = await finishing.snapshot();
  assert.ok(queries >= 3, "the reader retried until the head was there");
  assert.equal(snap?.head.generation, 2);
  assert.equal(snap?.slots[1]?.addr, "10.1.0.22");
});

test("poll queries the pool only when the head's generation moved", async () => {
  const pool = uniqueName("p");
  const { writer, head } = await publishedPool(pool, 2, [ready(1, 1)]);
  const rec = recorder();
  const reader = new SlotReader({ client, table, pool, observe: rec.observe });
  const first = await reader.poll(undefined);
  assert.equal(first.changed, true);
  assert.equal(first.changed && first.snapshot.head.generation, 1);
  const same = await reader.poll(1);
  assert.deepEqual(same, { changed: false, head });
  assert.equal(rec.count("pool.query"), 1);
  assert.equal(rec.count("head.read"), 2);
  await writer.publish(term, { base: head, changed: [ready(2, 2)] });
  const moved = await reader.poll(1);
  assert.equal(moved.changed, true);
  assert.equal(moved.changed && moved.snapshot.slots[1]?.addr, "10.1.0.2");
  assert.equal(rec.count("pool.query"), 2);
});

/** A small deterministic PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test("interleaved with a writer publishing many generations, every snapshot a reader returns is one published state, whole", async () => {
  const pool = uniqueName("p");
  const size = 6;
  const writer = new FencedWriter({ client, table, pool, leader: "srv-a", clock: new ManualClock() });
  let head = (await writer.stampEpoch(term, size)).head;
  const states = new Map<number, Slot[]>();
  // A cold-started pool has no slot items: a slot never written reads as plain free.
  let current: Slot[] = Array.from({ length: size }, (_, i) => ({ slot: i + 1, state: "free", weight: 0 }) as Slot);
  const random = prng(42);
  let done = false;

  const publishing = (async () => {
    try {
      for (let g = 1; g <= 40; g++) {
        const changed: Slot[] = [];
        for (const s of current) {
          if (random() < 0.5) {
            changed.push(random() < 0.3 ? { slot: s.slot, state: "free", weight: 0 } : ready(s.slot, g * 10 + s.slot, 1 + Math.floor(random() * 10)));
          }
        }
        if (changed.length === 0) changed.push(ready(1, g * 10 + 1));
        // Record the state before it can be seen.
        const next = current.map((s) => {
          const c = changed.find((x) => x.slot === s.slot);
          return c ? { ...c, generation: g, epoch: 1 } : s;
        });
        states.set(g, next);
        head = (await writer.publish(term, { base: head, changed })).head;
        current = next;
      }
    } finally {
      done = true;
    }
  })();

  const seen: Snapshot[] = [];
  const readers = [1, 2].map(async () => {
    const reader = new SlotReader({ client, table, pool, maxAttempts: 100, retryDelayMs: 0 });
    while (!done) {
      const snap = await reader.snapshot();
      if (snap) seen.push(snap);
    }
  });
  await Promise.all([publishing, ...readers]);

  assert.ok(seen.length >= 10, `only ${seen.length} snapshots read`);
  const generations = new Set<number>();
  for (const snap of seen) {
    const g = snap.head.generation;
    generations.add(g);
    for (const s of snap.slots) assert.ok((s.generation ?? 0) <= g, `slot ${s.slot} of generation ${s.generation} in snapshot ${g}`);
    assert.deepEqual(snap.slots, states.get(g), `snapshot of generation ${g} is not the state published as ${g}`);
    assert.deepEqual(snap.invalid, []);
  }
  assert.ok(generations.size >= 3, `the readers saw only generations ${[...generations]}`);
});
