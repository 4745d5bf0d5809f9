// The server loop on the real store (dynalite through the SDK) with small
// sources that implement TargetSource, one per behaviour.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { DeleteItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { ConfigError, ManualClock, TerminalError, SourceError, silentLogger, type LogFields, type Logger, type Target } from "@hsdo/core";
import { FencedWriter, LeaseKeeper, SlotReader } from "@hsdo/store";
import { poolItems, putRaw, createTestTable, startDynalite, type DynaliteHandle, waitFor } from "@hsdo/testkit";
import { Server, type ServerOptions } from "./server.ts";
import type { TargetSource } from "./sources/types.ts";

let dynalite: DynaliteHandle;
let pools = 0;
before(async () => {
  dynalite = await startDynalite();
  const c = dynalite.client();
  await createTestTable(c, "hsdo");
  c.destroy();
});
after(() => dynalite.destroy());

const target = (id: string, n: number, extra: Partial<Target> = {}): Target => ({
  id,
  addr: `10.0.0.${n}`,
  port: 80,
  group: "g",
  az: "a",
  launchedAt: n,
  health: "ready",
  ...extra,
});

/** A source whose answer the test sets, and that can be told to fail. */
class ScriptedSource implements TargetSource {
  readonly name = "scripted";
  answer: Target[] = [];
  failing = false;
  completed: string[] = [];
  failCompletions = 0;
  async list(): Promise<Target[]> {
    if (this.failing) throw new SourceError("scripted", "down");
    return this.answer.map((t) => ({ ...t }));
  }
  async completeLifecycle(t: Target): Promise<void> {
    if (this.failCompletions > 0) {
      this.failCompletions--;
      throw new SourceError("scripted", "CompleteLifecycleAction throttled");
    }
    this.completed.push(t.id);
  }
}

/** A server on the shared dynalite, owner `owner`, for pool `pool`, with its own manual clock. */
function makeServer(client: DynamoDBClient, pool: string, owner: string, size: number, source: TargetSource, extra: Partial<ServerOptions> = {}) {
  const clock = new ManualClock();
  const common = { client, table: "hsdo", pool };
  const lease = new LeaseKeeper({ ...common, owner, leaseMs: 60_000, clock });
  const server = new Server({
    pool,
    source,
    lease,
    writer: new FencedWriter({ ...common, leader: owner, clock }),
    reader: new SlotReader(common),
    slots: { size, weight: { min: 1, max: 3, step: 1, intervalMs: 1000 }, drainMs: 5000, maxRemovalFraction: 0.5, confirmTicks: 2 },
    intervalMs: 100,
    heartbeatMs: 100,
    clock,
    ...extra,
  });
  return { clock, lease, server };
}

function setup(size = 4, extra: Partial<ServerOptions> = {}) {
  const pool = `p${++pools}`;
  const client = dynalite.client();
  const source = new ScriptedSource();
  const { clock, lease, server } = makeServer(client, pool, "s1", size, source, extra);
  const reader = new SlotReader({ client, table: "hsdo", pool });
  return { pool, client, clock, source, lease, server, reader, close: () => (lease.stop(), client.destroy()) };
}

test("a source error changes nothing in the table", async () => {
  const s = setup();
  try {
    s.source.answer = [target("a", 1), target("b", 2)];
    await s.server.leaseTick();
    const first = await s.server.tick();
    assert.equal(first.published, true);
    const before = await s.reader.snapshot();
    s.source.failing = true;
    s.clock.advance(10_000);
    const r = await s.server.tick();
    assert.match(r.sourceError ?? "", /scripted: down/);
    assert.equal(r.published, false);
    assert.deepEqual(await s.reader.snapshot(), before);
  } finally {
    s.close();
  }
});

test("a publication that fails half-way is read back before the next one, and the table ends consistent", async () => {
  const s = setup();
  try {
    s.source.answer = [target("a", 1)];
    await s.server.leaseTick();
    await s.server.tick();
    await dynalite.stop();
    s.source.answer = [target("a", 1), target("b", 2), target("c", 3)];
    const failed = await s.server.tick();
    assert.ok(failed.error, "the tick reports the store error");
    await dynalite.start();
    const r = await s.server.tick();
    assert.equal(r.error, undefined, r.error);
    const snap = await s.reader.snapshot();
    assert.deepEqual(
      snap?.slots.map((x) => `${x.slot}:${x.state}:${x.name ?? ""}`),
      ["1:ready:a", "2:ready:b", "3:ready:c", "4:free:"],
    );
    assert.ok(snap!.slots.every((x) => (x.generation ?? 0) <= snap!.head.generation));
  } finally {
    s.close();
  }
});

test("a drained instance's lifecycle action is completed once, after the drain, and retried when it fails", async () => {
  const s = setup();
  try {
    s.source.answer = [target("a", 1), target("b", 2)];
    await s.server.leaseTick();
    await s.server.tick();
    s.source.answer = [target("a", 1), target("b", 2, { health: "leaving", lifecycleHook: "drain-hook" })];
    s.clock.advance(1000);
    let r = await s.server.tick();
    assert.equal(r.slots?.[1]?.state, "drain");
    assert.deepEqual(s.source.completed, [], "not before the drain ends");
    s.clock.advance(5000);
    s.source.failCompletions = 1;
    r = await s.server.tick();
    assert.equal(r.slots?.[1]?.state, "free");
    assert.deepEqual(s.source.completed, [], "the clients get two intervals to apply maint first");
    s.clock.advance(200);
    r = await s.server.tick();
    assert.equal(r.releaseFailures, 1);
    assert.deepEqual(s.source.completed, []);
    r = await s.server.tick();
    assert.deepEqual(r.released, ["b"]);
    await s.server.tick();
    assert.deepEqual(s.source.completed, ["b"], "completed exactly once");
  } finally {
    s.close();
  }
});

test("a size below an occupied slot is refused at takeover: a TerminalError (the one thing that ends the loop) carrying the ConfigError, and no slot changes", async () => {
  const s = setup(4);
  try {
    s.source.answer = [target("a", 1), target("b", 2), target("c", 3)];
    await s.server.leaseTick();
    await s.server.tick();
    const before = await s.reader.snapshot();
    await s.lease.release();
    s.lease.stop();
    const { lease, server: smaller } = makeServer(s.client, s.pool, "s2", 2, s.source);
    const st = await smaller.leaseTick();
    assert.equal(st?.role, "leader", JSON.stringify(st));
    await assert.rejects(
      smaller.tick(),
      (err: unknown) => err instanceof TerminalError && err.reason instanceof ConfigError && /^size: 2 is below slot 3/.test(err.message),
    );
    const after = await s.reader.snapshot();
    const content = (snap: typeof after) => snap?.slots.map(({ epoch: _e, ...rest }) => rest);
    assert.deepEqual(content(after), content(before), "only epochs were stamped");
    assert.equal(after?.head.size, 4);
    assert.equal(after?.head.generation, before?.head.generation);
    lease.stop();
  } finally {
    s.close();
  }
});

test("a server that stops releases its lease, so a standby takes over at once", async () => {
  const s = setup();
  try {
    s.source.answer = [target("a", 1)];
    const stop = new AbortController();
    const running = s.server.run(stop.signal);
    await waitFor("s1 publishes", async () => (await s.reader.snapshot())?.head.leader === "s1");
    stop.abort();
    await running;
    const clock = new ManualClock();
    const standby = new LeaseKeeper({ client: s.client, table: "hsdo", pool: s.pool, owner: "s2", leaseMs: 60_000, clock });
    const status = await standby.tick();
    assert.equal(status.role, "leader", "no wait for a full lease after a release");
    standby.stop();
  } finally {
    s.close();
  }
});


/** Lease tick then reconcile, as the loops do, until `done` or `rounds` rounds: returns the rounds used. */
async function roundsUntil(s: ReturnType<typeof setup>, rounds: number, done: () => Promise<boolean>): Promise<number> {
  for (let i = 1; i <= rounds; i++) {
    await s.server.leaseTick();
    await s.server.tick();
    if (await done()) return i;
    s.clock.advance(100);
  }
  return assert.fail(`not done within ${rounds} rounds: ${JSON.stringify([...(await poolItems(s.client, "hsdo", s.pool)).values()])}`);
}

test("a fenced-out leader (head and a slot restored with higher epochs) takes a term above them and publishes again", async () => {
  const s = setup();
  try {
    s.source.answer = [target("a", 1), target("b", 2)];
    await s.server.leaseTick();
    assert.equal((await s.server.tick()).published, true);
    const items = await poolItems(s.client, "hsdo", s.pool);
    assert.equal(items.get(-1)?.epoch, 1);
    // A restore from a backup taken under a later term: the lease says epoch 1, the head 7 and slot 2 says 9.
    await putRaw(s.client, "hsdo", { ...items.get(0), epoch: 7 });
    await putRaw(s.client, "hsdo", { ...items.get(2), epoch: 9 });
    s.source.answer = [target("a", 1), target("b", 2), target("c", 3)];
    const used = await roundsUntil(s, 6, async () => {
      // A publication refused half-way leaves slot 3 newer than the head (torn) until the new term's stamp repairs it.
      const snap = await s.reader.snapshot().catch(() => undefined);
      return snap?.slots.some((x) => x.name === "c" && x.state === "ready") === true;
    });
    const after = await poolItems(s.client, "hsdo", s.pool);
    const epoch = after.get(-1)?.epoch as number;
    assert.equal(after.get(-1)?.owner, "s1", "the same server kept the lease");
    assert.ok(epoch > 9, `the lease's epoch ${epoch} is above every stored epoch`);
    assert.equal(after.get(0)?.epoch, epoch, "the head carries the new term");
    assert.equal(after.get(0)?.leader, "s1");
    for (const [slot, item] of after) if (slot > 0) assert.equal(item.epoch, epoch, `slot ${slot} stamped with the new term`);
    assert.ok(used <= 4, `took ${used} rounds`);
    assert.equal(s.lease.term?.epoch, epoch);
  } finally {
    s.close();
  }
});

test("a deleted lease item: the leader's heartbeat fails, it takes a new term above the head's epoch and publishes again", async () => {
  const s = setup();
  try {
    s.source.answer = [target("a", 1)];
    await s.server.leaseTick();
    assert.equal((await s.server.tick()).published, true);
    await s.client.send(new DeleteItemCommand({ TableName: "hsdo", Key: marshall({ pool: s.pool, slot: -1 }) }));
    s.source.answer = [target("a", 1), target("b", 2)];
    await roundsUntil(s, 4, async () => (await s.reader.snapshot())?.slots.some((x) => x.name === "b") === true);
    const after = await poolItems(s.client, "hsdo", s.pool);
    assert.equal(after.get(-1)?.owner, "s1");
    assert.equal(after.get(-1)?.epoch, 2, "above the head's epoch 1");
    assert.equal(after.get(0)?.epoch, 2);
  } finally {
    s.close();
  }
});

test("a leader killed mid-publication leaves a torn pool: the next leader's stamp repairs it and it publishes", async () => {
  const s = setup();
  try {
    s.source.answer = [target("a", 1), target("b", 2)];
    await s.server.leaseTick();
    await s.server.tick();
    const head = (await poolItems(s.client, "hsdo", s.pool)).get(0)!;
    // s1 wrote slot 3 of its next publication (generation G+1), then died before the head.
    await putRaw(s.client, "hsdo", { pool: s.pool, slot: 3, state: "ready", addr: "10.0.0.3", port: 80, name: "c", group: "g", az: "a", weight: 1, since: 0, generation: (head.generation as number) + 1, epoch: head.epoch });
    await s.lease.release();
    s.lease.stop();
    const next = makeServer(s.client, s.pool, "s2", 4, s.source);
    assert.equal((await next.server.leaseTick())?.role, "leader");
    s.source.answer = [target("a", 1), target("b", 2), target("c", 3), target("d", 4)];
    const r = await next.server.tick();
    assert.equal(r.error, undefined, r.error);
    const snap = await s.reader.snapshot();
    assert.deepEqual(snap?.slots.map((x) => x.name), ["a", "b", "c", "d"], "c kept the slot the dead leader gave it");
    assert.equal(snap?.head.leader, "s2");
    next.lease.stop();
  } finally {
    s.close();
  }
});

test("the leader's own publication throttled half-way: the next tick re-stamps and publishes", async () => {
  const s = setup();
  let armed = false;
  let puts = 0;
  s.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (armed && (context as { commandName?: string }).commandName === "PutItemCommand" && ++puts === 2) {
        throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
      }
      return next(args);
    },
    { step: "initialize", name: "throttle-second-put" },
  );
  try {
    s.source.answer = [target("a", 1)];
    await s.server.leaseTick();
    await s.server.tick();
    s.source.answer = [target("a", 1), target("b", 2), target("c", 3)];
    armed = true;
    s.clock.advance(1000);
    assert.match((await s.server.tick()).error ?? "", /Rate exceeded/);
    armed = false;
    s.clock.advance(1000);
    const r = await s.server.tick();
    assert.equal(r.error, undefined, r.error);
    const snap = await s.reader.snapshot();
    assert.deepEqual(snap?.slots.map((x) => x.name ?? "-"), ["a", "b", "c", "-"]);
  } finally {
    s.close();
  }
});

test("a target with fields that cannot be published is kept out; the others are published", async () => {
  const s = setup();
  try {
    s.source.answer = [target("a", 1), target("b", 2, { group: "my asg" }), target("c", 3, { addr: "origin.example.com" })];
    await s.server.leaseTick();
    const r = await s.server.tick();
    assert.equal(r.error, undefined, r.error);
    const snap = await s.reader.snapshot();
    assert.deepEqual(snap?.slots.map((x) => x.name ?? "-"), ["a", "-", "-", "-"]);
  } finally {
    s.close();
  }
});

/** A logger that keeps its warnings, to see what the server reports. */
function recordingLogger(): Logger & { warnings: { msg: string; fields?: LogFields }[] } {
  const warnings: { msg: string; fields?: LogFields }[] = [];
  const log = { ...silentLogger, warnings, warn: (msg: string, fields?: LogFields) => void warnings.push({ msg, fields }) };
  return { ...log, child: () => log };
}

test("a target at an address that is never a target (IMDS, loopback by default) is kept out and reported once", async () => {
  const log = recordingLogger();
  const s = setup(4, { log });
  try {
    s.source.answer = [target("a", 1), target("imds", 2, { addr: "169.254.169.254" }), target("imds6", 3, { addr: "fd00:ec2::254" }), target("lo", 4, { addr: "127.0.0.1" })];
    await s.server.leaseTick();
    const r = await s.server.tick();
    assert.equal(r.error, undefined, r.error);
    const snap = await s.reader.snapshot();
    assert.deepEqual(snap?.slots.map((x) => x.name ?? "-"), ["a", "-", "-", "-"]);
    assert.ok(snap?.slots.every((x) => x.addr === undefined || x.addr === "10.0.0.1"), "no refused address reached the table");
    const kept = () => log.warnings.filter((w) => w.msg === "target kept out: it cannot be published");
    assert.deepEqual(kept().map((w) => w.fields?.id), ["imds", "imds6", "lo"]);
    assert.match(String(kept()[0]?.fields?.problems), /addr 169\.254\.169\.254 is link-local \(the instance metadata service lives there\): never a target/);
    assert.match(String(kept()[2]?.fields?.problems), /loopback/);
    await s.server.tick();
    assert.equal(kept().length, 3, "the same problem is not logged again every tick");
  } finally {
    s.close();
  }
});

test("what the source could not use (a Consul entry without an IP address) is reported once, again when it comes back", async () => {
  const log = recordingLogger();
  const s = setup(4, { log });
  let problems = ['service "web": address "web-1.internal" is not an IP address; kept pending'];
  Object.assign(s.source, { problems: () => problems });
  try {
    s.source.answer = [target("a", 1)];
    await s.server.leaseTick();
    await s.server.tick();
    const reported = () => log.warnings.filter((w) => w.msg === "source entry not usable as listed").map((w) => w.fields?.problem);
    assert.deepEqual(reported(), [problems[0]]);
    assert.equal(log.warnings.find((w) => w.msg === "source entry not usable as listed")?.fields?.source, "scripted");
    await s.server.tick();
    assert.equal(reported().length, 1, "the same problem is not logged again every tick");
    const first = problems[0];
    problems = [];
    await s.server.tick();
    problems = [first!];
    await s.server.tick();
    assert.equal(reported().length, 2, "a problem that went away and came back is logged again");
  } finally {
    s.close();
  }
});

test("allowLoopback publishes a loopback target, and still never a link-local one", async () => {
  const s = setup(4, { addresses: { allowLoopback: true } });
  try {
    s.source.answer = [target("lo", 1, { addr: "127.0.0.7" }), target("imds", 2, { addr: "169.254.169.254" }), target("ll6", 3, { addr: "fe80::1" })];
    await s.server.leaseTick();
    const r = await s.server.tick();
    assert.equal(r.error, undefined, r.error);
    const snap = await s.reader.snapshot();
    assert.deepEqual(snap?.slots.map((x) => `${x.name ?? "-"}@${x.addr ?? "-"}`), ["lo@127.0.0.7", "-@-", "-@-", "-@-"]);
  } finally {
    s.close();
  }
});

test("a hand-edited invalid item is kept occupied and reported by a new leader, then repaired for its live target", async () => {
  const s = setup(4);
  const log = recordingLogger();
  try {
    s.source.answer = [target("a", 1), target("b", 2)];
    await s.server.leaseTick();
    await s.server.tick();
    const head = (await poolItems(s.client, "hsdo", s.pool)).get(0)!;
    // A hand edit breaks b's item (a weight no HAProxy takes) and writes a slot nothing identifies.
    await putRaw(s.client, "hsdo", { pool: s.pool, slot: 2, state: "ready", addr: "10.0.0.2", port: 80, name: "b", weight: "heavy", generation: head.generation, epoch: head.epoch });
    await putRaw(s.client, "hsdo", { pool: s.pool, slot: 3, state: "running", generation: head.generation, epoch: head.epoch });
    await s.lease.release();
    s.lease.stop();
    const next = makeServer(s.client, s.pool, "s2", 4, s.source, { log });
    assert.equal((await next.server.leaseTick())?.role, "leader");
    // A held answer (everything gone at once) settles nothing: b stays in its quarantined slot 2.
    s.source.answer = [];
    let r = await next.server.tick();
    assert.equal(r.valveHolding, true);
    const cannotRead = log.warnings.filter((w) => w.msg.startsWith("slot item cannot be read"));
    assert.deepEqual(cannotRead.map((w) => w.fields?.slot), [2, 3], "the new leader says what it cannot read");
    assert.match(String(cannotRead[0]?.fields?.problems), /weight "heavy" is not a weight/);
    assert.deepEqual(r.quarantined?.map((q) => q.slot), [2, 3]);
    // The fleet answers again, with a newcomer: b gets slot 2 back (repaired), the newcomer neither 2 nor 3.
    s.source.answer = [target("a", 1), target("b", 2), target("n", 9)];
    next.clock.advance(1000);
    r = await next.server.tick();
    assert.equal(r.error, undefined, r.error);
    assert.deepEqual(r.quarantined?.map((q) => q.slot), [3]);
    const snap = await s.reader.snapshot();
    assert.deepEqual(snap?.invalid.map((i) => i.slot), [3], "slot 2 was rewritten, slot 3 still cannot be read");
    assert.deepEqual(snap?.slots.map((x) => x.name ?? "-"), ["a", "b", "-", "n"]);
    assert.equal(snap?.slots[1]?.addr, "10.0.0.2");
    assert.ok(log.warnings.some((w) => w.msg === "invalid slot item repaired for its live target" && w.fields?.slot === 2));
    // Slot 3 is reported again only when the quarantine changes.
    const quarantined = () => log.warnings.filter((w) => w.msg.startsWith("invalid slot item quarantined")).length;
    const seen = quarantined();
    await next.server.tick();
    assert.equal(quarantined(), seen);
    next.lease.stop();
  } finally {
    s.close();
  }
});

test("slot memory survives a leader change: a target back after its slot was freed takes it again", async () => {
  const s = setup(4);
  try {
    s.source.answer = [target("a", 1), target("b", 2), target("c", 3)];
    await s.server.leaseTick();
    await s.server.tick();
    // b is deregistered (gone, not leaving): freed at once, remembering b.
    s.source.answer = [target("a", 1), target("c", 3)];
    s.clock.advance(1000);
    let r = await s.server.tick();
    assert.equal(r.slots?.[1]?.state, "free");
    assert.equal((await s.reader.snapshot())?.slots[1]?.last, "b");
    await s.lease.release();
    s.lease.stop();
    const next = makeServer(s.client, s.pool, "s2", 4, s.source);
    assert.equal((await next.server.leaseTick())?.role, "leader");
    s.source.answer = [target("z", 0), target("a", 1), target("b", 2), target("c", 3)];
    r = await next.server.tick();
    assert.equal(r.error, undefined, r.error);
    assert.deepEqual((await s.reader.snapshot())?.slots.map((x) => x.name ?? "-"), ["a", "b", "c", "z"], "b before the older newcomer z");
    next.lease.stop();
  } finally {
    s.close();
  }
});

test("a hook that throws is logged as a hook failure and breaks neither the tick nor the lease", async (t) => {
  const errors: { msg: string; fields?: LogFields }[] = [];
  const log: Logger = { ...silentLogger, error: (msg: string, fields?: LogFields) => void errors.push({ msg, fields }) };
  const { source, server, close } = setup(2, {
    log,
    onTick: () => {
      throw new Error("recorder broke");
    },
    onLease: () => {
      throw new Error("gauge broke");
    },
  });
  t.after(close);
  source.answer = [target("a", 1)];
  const lease = await server.leaseTick();
  assert.equal(lease?.role, "leader", "the lease tick still reports its status");
  assert.equal(server.lastLeaseError, undefined, "a throwing hook is not a DynamoDB error");
  const r = await server.tick();
  assert.equal(r.role, "leader");
  assert.equal(r.published, true);
  assert.deepEqual(
    errors.filter((e) => e.msg === "hook failed").map((e) => [e.fields?.hook, e.fields?.error]),
    [
      ["onLease", "gauge broke"],
      ["onTick", "recorder broke"],
    ],
  );
});
