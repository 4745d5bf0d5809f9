import { test } from "node:test";
import assert from "node:assert/strict";
import { LeaseLostError, ManualClock, systemClock } from "@hsdo/core";
import { TEST_CREDENTIALS, waitFor, fileBed, putRaw, recorder, uniqueName } from "@hsdo/testkit";
import { createDynamoClient } from "./client.ts";
import { LeaseTakenError, MalformedItemError } from "./errors.ts";
import { LeaseKeeper, readLease, type LeaseKeeperOptions, type LeaseStatus, type LeaseTerm } from "./lease.ts";
import { HEAD_SLOT, LEASE_SLOT } from "./table.ts";

const { dynalite, client, table } = await fileBed("lease");

// Long enough that the keeper's real expiry timer never fires during a ManualClock test.
const LEASE_MS = 60_000;
const MARGIN_MS = 12_000;

interface Contender {
  keeper: LeaseKeeper;
  clock: ManualClock;
  became: LeaseTerm[];
  lost: LeaseLostError[];
}

function contender(pool: string, owner: string, t: { after(fn: () => void): void }, extra: Partial<LeaseKeeperOptions> = {}): Contender {
  // Each contender has its own clocks, far apart on purpose: nothing may compare them.
  const clock = new ManualClock(Date.UTC(2026, 0, 1) + owner.length * 3_600_000, owner.length * 1_000_000);
  const became: LeaseTerm[] = [];
  const lost: LeaseLostError[] = [];
  const keeper = new LeaseKeeper({
    client,
    table,
    pool,
    owner,
    leaseMs: LEASE_MS,
    safetyMarginMs: MARGIN_MS,
    clock,
    onBecameLeader: (term) => became.push(term),
    onLostLeadership: (err) => lost.push(err),
    ...extra,
  });
  t.after(() => keeper.stop());
  return { keeper, clock, became, lost };
}

function assertLeader(status: LeaseStatus, epoch: number): LeaseTerm {
  assert.equal(status.role, "leader", `expected leader, got ${JSON.stringify(status)}`);
  if (status.role !== "leader") throw new Error("unreachable");
  assert.equal(status.term.epoch, epoch);
  return status.term;
}

function assertStandby(status: LeaseStatus): Extract<LeaseStatus, { role: "standby" }> {
  assert.equal(status.role, "standby", `expected standby, got ${JSON.stringify(status)}`);
  if (status.role !== "standby") throw new Error("unreachable");
  return status;
}

test("the first contender takes the lease of an empty pool at epoch 1", async (t) => {
  const pool = uniqueName("p");
  const a = contender(pool, "srv-a", t);
  const term = assertLeader(await a.keeper.tick(), 1);
  assert.equal(term.owner, "srv-a");
  assert.equal(term.signal.aborted, false);
  assert.deepEqual(a.became.map((x) => x.epoch), [1]);
  const stored = await readLease(client, table, pool);
  assert.equal(stored?.owner, "srv-a");
  assert.equal(stored?.epoch, 1);
  assert.equal(stored?.leaseMs, LEASE_MS);
  assert.ok(stored?.rvn);
});

test("with no lease item, the new epoch starts above the epoch already on the head", async (t) => {
  const pool = uniqueName("p");
  await putRaw(client, table, { pool, slot: HEAD_SLOT, generation: 9, epoch: 7, leader: "old", updatedAt: 1, size: 2 });
  const a = contender(pool, "srv-a", t);
  assertLeader(await a.keeper.tick(), 8);
});

test("a standby cannot take the lease while the holder heartbeats: it sees the rvn change", async (t) => {
  const pool = uniqueName("p");
  const a = contender(pool, "srv-a", t);
  const b = contender(pool, "srv-b", t);
  assertLeader(await a.keeper.tick(), 1);
  const rvns = new Set<string>();
  for (let i = 0; i < 10; i++) {
    const s = assertStandby(await b.keeper.tick());
    assert.equal(s.holder?.owner, "srv-a");
    assert.equal(s.unchangedForMs, 0, "each heartbeat is a new rvn, so the standby's wait starts again");
    rvns.add(s.holder?.rvn ?? "");
    a.clock.advance(20_000);
    b.clock.advance(20_000);
    assertLeader(await a.keeper.tick(), 1);
  }
  assert.equal(rvns.size, 10);
  assert.deepEqual(b.became, []);
  assert.equal((await readLease(client, table, pool))?.owner, "srv-a");
});

test("a standby takes over only after the same rvn for a full leaseMs of its own monotonic clock; epochs only grow", async (t) => {
  const pool = uniqueName("p");
  const a = contender(pool, "srv-a", t);
  const b = contender(pool, "srv-b", t);
  assertLeader(await a.keeper.tick(), 1);
  // srv-a dies silently: no more ticks.
  assert.equal(assertStandby(await b.keeper.tick()).unchangedForMs, 0);
  // srv-a's wall clock is hours away from srv-b's: irrelevant, only srv-b's monotonic time counts.
  b.clock.advance(LEASE_MS - 1);
  const waiting = assertStandby(await b.keeper.tick());
  assert.equal(waiting.unchangedForMs, LEASE_MS - 1);
  assert.equal(waiting.holder?.owner, "srv-a");
  b.clock.advance(1);
  assertLeader(await b.keeper.tick(), 2);

  // And back: srv-a (now a standby) outlives srv-b; epochs keep growing.
  const epochs = [1, 2];
  let [holder, standby] = [b, a];
  for (let i = 0; i < 3; i++) {
    // The standby was the holder before: its first tick reports that it was deposed, the next one starts watching.
    assert.ok(assertStandby(await standby.keeper.tick()).lost instanceof LeaseTakenError);
    assert.equal(assertStandby(await standby.keeper.tick()).unchangedForMs, 0);
    standby.clock.advance(LEASE_MS);
    const next = epochs[epochs.length - 1]! + 1;
    assertLeader(await standby.keeper.tick(), next);
    epochs.push(next);
    assert.equal((await readLease(client, table, pool))?.epoch, next);
    [holder, standby] = [standby, holder];
  }
  assert.deepEqual(epochs, [1, 2, 3, 4, 5]);
});

test("the holder counts its validity from the send time of its last successful renewal", async (t) => {
  const pool = uniqueName("p");
  const a = contender(pool, "srv-a", t);
  assertLeader(await a.keeper.tick(), 1);
  a.clock.advance(40_000);
  assertLeader(await a.keeper.tick(), 1);
  a.clock.advance(40_000); // 80 s since the take, 40 s since the renewal: still valid.
  const status = await a.keeper.tick();
  assertLeader(status, 1);
  if (status.role === "leader") assert.equal(status.validForMs, LEASE_MS - MARGIN_MS);
});

test("the holder steps down by itself when it cannot renew within leaseMs minus the margin", async (t) => {
  const pool = uniqueName("p");
  const a = contender(pool, "srv-a", t);
  const term = assertLeader(await a.keeper.tick(), 1);
  await dynalite.stop();
  t.after(async () => {
    if (!dynalite.proc.running()) await dynalite.start();
  });
  a.clock.advance(20_000);
  await assert.rejects(a.keeper.tick(), (err: unknown) => !(err instanceof LeaseLostError), "a network error passes through unchanged");
  assert.equal(a.keeper.term, term, "still the leader: within leaseMs - margin of the last renewal");
  a.clock.advance(LEASE_MS - MARGIN_MS - 20_000 - 1);
  assert.equal(a.keeper.term, term);
  assert.equal(term.signal.aborted, false);
  a.clock.advance(1);
  const status = assertStandby(await a.keeper.tick());
  assert.ok(status.lost instanceof LeaseLostError);
  assert.match(status.lost.message, /could not renew for 48000 ms, past the limit of 48000 ms/);
  assert.equal(term.signal.aborted, true);
  assert.equal(term.signal.reason, status.lost);
  assert.equal(a.keeper.term, undefined);
  assert.deepEqual(a.lost, [status.lost]);
  await dynalite.start();
});

test("a deposed holder's heartbeat fails with LeaseLostError carrying the new holder, and its signal aborts", async (t) => {
  const pool = uniqueName("p");
  const rec = recorder();
  const a = contender(pool, "srv-a", t, { observe: rec.observe });
  const b = contender(pool, "srv-b", t);
  const termA = assertLeader(await a.keeper.tick(), 1);
  // srv-a is paused (its clock stands still) long enough for srv-b to take over.
  assertStandby(await b.keeper.tick());
  b.clock.advance(LEASE_MS);
  assertLeader(await b.keeper.tick(), 2);

  const err = await a.keeper.renew().then(
    () => assert.fail("a deposed holder renewed"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof LeaseLostError);
  assert.ok(err instanceof LeaseTakenError);
  assert.equal(err.holder?.owner, "srv-b");
  assert.equal(err.holder?.epoch, 2);
  assert.match(err.message, /lease lost by srv-a: the lease of epoch 1 is now held by "srv-b" at epoch 2/);
  assert.equal(rec.count("lease.renew", "conditional_failed"), 1);
  assert.equal(termA.signal.aborted, true);
  assert.equal(termA.signal.reason, err);
  assert.deepEqual(a.lost, [err]);
  assert.equal((await readLease(client, table, pool))?.owner, "srv-b");
  // Back to standby: it watches srv-b's lease like anyone else.
  const s = assertStandby(await a.keeper.tick());
  assert.equal(s.holder?.owner, "srv-b");
});

test("tick() of a deposed holder reports the loss instead of throwing", async (t) => {
  const pool = uniqueName("p");
  const a = contender(pool, "srv-a", t);
  const b = contender(pool, "srv-b", t);
  const termA = assertLeader(await a.keeper.tick(), 1);
  assertStandby(await b.keeper.tick());
  b.clock.advance(LEASE_MS);
  assertLeader(await b.keeper.tick(), 2);
  const s = assertStandby(await a.keeper.tick());
  assert.ok(s.lost instanceof LeaseTakenError);
  assert.equal(s.holder?.owner, "srv-b");
  assert.equal(termA.signal.aborted, true);
});

test("a released lease is taken at once by a standby, and the releaser's signal is aborted first", async (t) => {
  const pool = uniqueName("p");
  const a = contender(pool, "srv-a", t);
  const b = contender(pool, "srv-b", t);
  const termA = assertLeader(await a.keeper.tick(), 1);
  assertStandby(await b.keeper.tick());
  await a.keeper.release();
  assert.equal(termA.signal.aborted, true);
  assert.equal((await readLease(client, table, pool))?.released, true);
  assertLeader(await b.keeper.tick(), 2);
  // srv-a, ticking again, does not snatch it back.
  assertStandby(await a.keeper.tick());
});

test("a malformed lease item is a clear error, not a crash", async (t) => {
  const pool = uniqueName("p");
  await putRaw(client, table, { pool, slot: LEASE_SLOT, owner: "x", epoch: "two", rvn: "r", leaseMs: 1000 });
  const a = contender(pool, "srv-a", t);
  const err = await a.keeper.tick().then(
    () => assert.fail("a malformed lease was accepted"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof MalformedItemError);
  assert.equal(err.slot, LEASE_SLOT);
  assert.match(err.message, /slot -1 \(lease item\) is malformed: epoch "two" is not an integer >= 0; fix or delete this item/);
});

test("real time: with no renewal the expiry timer aborts the term after leaseMs minus the margin, without a tick", async (t) => {
  const pool = uniqueName("p");
  const lost: LeaseLostError[] = [];
  const keeper = new LeaseKeeper({
    client,
    table,
    pool,
    owner: "srv-rt",
    leaseMs: 600,
    safetyMarginMs: 200,
    clock: systemClock,
    onLostLeadership: (err) => lost.push(err),
  });
  t.after(() => keeper.stop());
  const before = performance.now();
  const status = await keeper.tick();
  const term = assertLeader(status, 1);
  await waitFor("the term's signal to abort", () => term.signal.aborted, { timeoutMs: 3_000, intervalMs: 10 });
  const elapsed = performance.now() - before;
  assert.ok(elapsed >= 400, `aborted after ${elapsed} ms, before leaseMs - margin`);
  assert.ok(term.signal.reason instanceof LeaseLostError);
  assert.equal(lost.length, 1);
  assert.equal(keeper.term, undefined);
});

test("a take that landed but whose answer was lost (the SDK retries it and the retry fails its condition) leads on the next tick", async (t) => {
  const retrying = createDynamoClient({ endpoint: dynalite.endpoint, region: "us-east-1", credentials: TEST_CREDENTIALS, maxAttempts: 3 });
  t.after(() => retrying.destroy());
  let failNextPut = true;
  // The Put lands, then its answer is replaced by a 500: the SDK sends it again.
  retrying.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (failNextPut && (context as { commandName?: string }).commandName === "PutItemCommand") {
        failNextPut = false;
        throw Object.assign(new Error("We encountered an internal error"), { name: "InternalServerError", $fault: "server", $metadata: { httpStatusCode: 500 } });
      }
      return out;
    },
    { step: "finalizeRequest", priority: "low", name: "lose-the-answer" },
  );
  const pool = uniqueName("lost-answer");
  const keeper = new LeaseKeeper({ client: retrying, table, pool, owner: "a", leaseMs: LEASE_MS, safetyMarginMs: MARGIN_MS, clock: new ManualClock() });
  t.after(() => keeper.stop());
  const first = await keeper.tick();
  assert.equal(first.role, "standby", "the retry's failed condition hides the landed take");
  assert.equal((await readLease(client, table, pool))?.owner, "a", "yet the lease item is ours");
  const second = await keeper.tick();
  assert.equal(second.role, "leader", "the next read recognises our own rvn: no lease period without a leader");
});

test("a DynamoDB that stops answering (paused process) fails the tick after the request timeout instead of hanging it", async (t) => {
  const bounded = createDynamoClient({ endpoint: dynalite.endpoint, region: "us-east-1", credentials: TEST_CREDENTIALS, maxAttempts: 1, requestTimeoutMs: 300 });
  t.after(() => bounded.destroy());
  const keeper = new LeaseKeeper({ client: bounded, table, pool: uniqueName("paused"), owner: "a", leaseMs: LEASE_MS, safetyMarginMs: MARGIN_MS });
  t.after(() => keeper.stop());
  dynalite.proc.signal("SIGSTOP");
  t.after(() => dynalite.proc.signal("SIGCONT"));
  const started = Date.now();
  await assert.rejects(keeper.tick(), /timeout|timed out/i);
  dynalite.proc.signal("SIGCONT");
  // Bounded by the timeout, not by the lease (60 s): the loop gets to tick again.
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});
