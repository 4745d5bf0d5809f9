// The agent's bookkeeping with a manual clock: a poller and a reconciler that
// implement the agent's narrow interfaces, one behaviour each.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, silentLogger, type Snapshot } from "@hsdo/core";
import type { PollResult } from "@hsdo/store";
import { ClientAgent, tickDelay, type ClientAgentOptions, type SnapshotPoller } from "./agent.ts";
import type { ReconcileResult } from "./reconcile.ts";

const snapshot = (generation: number): Snapshot => ({
  pool: "p",
  head: { generation, epoch: 1, leader: "s1", updatedAt: 0, size: 1 },
  slots: [{ slot: 1, state: "ready", addr: "10.0.0.1", port: 80, name: "a", weight: 1 }],
  invalid: [],
});

const ORIGIN = { endpoint: "http://127.0.0.1:1", region: "r", table: "t" };

/** A table that answers what the test says, or fails. */
class ScriptedPoller implements SnapshotPoller {
  readonly pool = "p";
  current: Snapshot | undefined;
  down = false;
  polls: (number | undefined)[] = [];
  async poll(last: number | undefined): Promise<PollResult> {
    this.polls.push(last);
    if (this.down) throw new Error("connect ECONNREFUSED");
    if (!this.current) return { changed: false, head: undefined };
    if (this.current.head.generation === last) return { changed: false, head: this.current.head };
    return { changed: true, snapshot: this.current };
  }
}

class RecordingReconciler {
  applied: number[] = [];
  async tick(snaps: Snapshot | readonly Snapshot[]): Promise<ReconcileResult> {
    const list = Array.isArray(snaps) ? snaps : [snaps as Snapshot];
    this.applied.push(...list.map((s) => s.head.generation));
    return { dryRun: false, planned: [], sent: [], failed: [], drift: [], problems: [], kept: [] };
  }
}

function agent(extra: Partial<ClientAgentOptions> = {}, poller = new ScriptedPoller(), reconciler = new RecordingReconciler()) {
  const clock = new ManualClock();
  const a = new ClientAgent({ pollers: [poller], reconciler, cacheDir: "", origin: ORIGIN, serverStateFile: "", maxSnapshotAgeMs: 10_000, intervalMs: 1000, clock, ...extra });
  return { clock, poller, reconciler, a };
}

test("not ready until a snapshot is applied; no snapshot is named as the reason", async () => {
  const { a, poller, reconciler } = agent();
  await a.tick();
  assert.deepEqual(reconciler.applied, [], "nothing to apply, HAProxy untouched");
  const r = a.readiness();
  assert.equal(r.ready, false);
  assert.ok(r.reasons.some((x) => /no snapshot: no server has published pool p yet/.test(x)), r.reasons.join("; "));
  poller.current = snapshot(1);
  await a.tick();
  assert.deepEqual(a.readiness(), { ready: true, reasons: [], warnings: [] });
});

test("fail static: a table outage keeps applying the last snapshot; staleness past maxSnapshotAge warns, and makes only the strict readiness drop", async () => {
  const { a, poller, reconciler, clock } = agent();
  poller.current = snapshot(3);
  await a.tick();
  poller.down = true;
  clock.advance(5000);
  await a.tick();
  assert.deepEqual(reconciler.applied, [3, 3], "the reconcile still runs on the last good snapshot (drift repair goes on)");
  assert.equal(a.readiness().ready, true, "one failed read is not stale yet");
  clock.advance(6000);
  const r = a.readiness();
  assert.equal(r.ready, true, "a serving node stays ready through a DynamoDB outage, or the whole fleet would drop");
  assert.deepEqual(r.reasons, []);
  assert.match(r.warnings.join("; "), /table last read 11s ago \(limit 10s\).*ECONNREFUSED.*HAProxy keeps the last snapshot/);
  const strict = a.readiness({ strict: true });
  assert.equal(strict.ready, false);
  assert.match(strict.reasons.join("; "), /table last read 11s ago \(limit 10s\).*ECONNREFUSED/);
  poller.down = false;
  poller.current = snapshot(4);
  await a.tick();
  assert.deepEqual(reconciler.applied, [3, 3, 4]);
  assert.equal(a.readiness({ strict: true }).ready, true);
});

test("the head is polled with the applied generation, so an unchanged pool costs no Query", async () => {
  const { a, poller } = agent();
  poller.current = snapshot(7);
  await a.tick();
  await a.tick();
  assert.deepEqual(poller.polls, [undefined, 7]);
});

test("the first snapshot of a pool is checked at start-up and a refusal ends the tick; later snapshots never are", async () => {
  const checked: number[] = [];
  const { a, poller, reconciler } = agent({
    checkFirstSnapshot: (s) => {
      checked.push(s.head.generation);
      if (s.head.generation === 1) throw new Error("backend be sets no port");
    },
  });
  poller.current = snapshot(1);
  await assert.rejects(a.tick(), /backend be sets no port/);
  assert.deepEqual(reconciler.applied, [], "nothing applied from a snapshot the configuration cannot drive");

  const { a: b } = agent({ checkFirstSnapshot: (s) => void checked.push(s.head.generation) }, poller, reconciler);
  poller.current = snapshot(2);
  await b.tick();
  poller.current = snapshot(3);
  await b.tick();
  assert.deepEqual(checked, [1, 2], "only the first snapshot of each run is checked");
  assert.deepEqual(reconciler.applied, [2, 3]);
});

test("a throwing onTick hook is logged and the tick still returns its result", async () => {
  const errors: string[] = [];
  const log = { ...silentLogger, error: (msg: string, fields?: Record<string, unknown>) => void errors.push(`${msg}: ${String(fields?.hook)} ${String(fields?.error)}`) };
  const { a, poller } = agent({
    log,
    onTick: () => {
      throw new Error("recorder broke");
    },
  });
  poller.current = snapshot(1);
  const r = await a.tick();
  assert.equal(r.pools[0]?.generation, 1);
  assert.deepEqual(errors, ["hook failed: onTick recorder broke"]);
});

test("tick jitter: the first wait is a random part of the interval, the next ones an interval give or take 10%", () => {
  assert.equal(tickDelay(1000, 0, true), 0);
  assert.equal(tickDelay(1000, 0.5, true), 500);
  assert.equal(tickDelay(1000, 0, false), 900);
  assert.equal(tickDelay(1000, 1, false), 1100);
  // 1,000 clients booted together: their first ticks spread over the interval, never more than a few in any 10 ms.
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const buckets = new Map<number, number>();
  for (let i = 0; i < 1000; i++) {
    const at = Math.floor(tickDelay(1000, random(), true) / 10);
    buckets.set(at, (buckets.get(at) ?? 0) + 1);
  }
  assert.ok(buckets.size > 90, `spread over ${buckets.size} of 100 windows`);
  assert.ok(Math.max(...buckets.values()) <= 30, `at most ${Math.max(...buckets.values())} in one 10 ms window`);
});
