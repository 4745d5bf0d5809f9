// End to end, every part real or wire-faked: two `hsdo --server` (leader and
// standby) on an Auto Scaling group spread over two AZs with a termination
// lifecycle hook (fake AWS), dynalite in its own process, and two real
// HAProxy nodes, one per AZ, each driven by its own `hsdo --client` into a
// dedicated backend (its AZ's origins) and a fallback backend (the other
// AZ's). A background sampler polls both HAProxy sockets, the table and the
// fake's lifecycle completions during the whole story and checks the
// invariant (docs/ARCHITECTURE.md): slot k holds the same origin on both nodes, a live
// origin never changes slot, dedicated/fallback split by AZ, and no
// lifecycle action is completed while its instance still holds a slot.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { isDeepStrictEqual } from "node:util";
import { parseServersState, type ActualServer } from "@hsdo/client";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  startFakeAws,
  instanceId,
  type FakeAws,
  type FakeInstanceInput,
  dynaliteWithTable,
  startHaproxy,
  templateBackend,
  type HaproxyHandle,
  startHsdo,
  readPool,
  type Proc,
  waitFor,
} from "@hsdo/testkit";

const TABLE = "hsdo";
const POOL = "default";
const GROUP = "origin-asg";
const HOOK = "hsdo-drain";
const AZ_A = "eu-west-3a";
const AZ_B = "eu-west-3b";
const SIZE = 8;
const PREFIX = "origin";
const PORT = 8080;
const INTERVAL_MS = 400;
const WEIGHT_INTERVAL_MS = 300;
const MAX_WEIGHT = 3;
const DRAIN_MS = 1500;
const LEASE_MS = 2000;
const SAMPLE_EVERY_MS = 100;
const STARTUP_MS = 45_000;
const LAUNCH = Date.UTC(2026, 0, 1);

const BACKENDS = [
  { name: "be_local", prefix: PREFIX, port: PORT, select: "dedicated" },
  { name: "be_fallback", prefix: PREFIX, port: PORT, select: "fallback" },
] as const;
type BackendName = (typeof BACKENDS)[number]["name"];

/** Origin n: its id, AZ and an address that tells the AZ apart (10.0.1.n in a, 10.0.2.n in b). */
function origin(n: number, az: string, lifecycleState = "InService"): FakeInstanceInput {
  return { id: instanceId(n), ip: `10.0.${az === AZ_A ? 1 : 2}.${n}`, az, launchTime: LAUNCH + n * 1000, lifecycleState, healthStatus: "Healthy" };
}

const AZ_OF_ADDR = (addr: string | undefined): string | undefined =>
  addr?.startsWith("10.0.1.") ? AZ_A : addr?.startsWith("10.0.2.") ? AZ_B : undefined;

function slotOf(server: ActualServer): number {
  return Number(server.name.slice(PREFIX.length));
}

interface Node {
  name: "A" | "B";
  az: string;
  haproxy: HaproxyHandle;
}

type View = Map<string, ActualServer[]>;

/** One `show servers state` for all backends: one consistent read of the node. */
async function readView(node: Node): Promise<View> {
  return parseServersState(await node.haproxy.command("show servers state"));
}

/** backend -> slot -> "addr state [wN]", servers not in maint only. */
type Live = Record<BackendName, Record<number, string>>;

function liveOf(view: View, withWeight: boolean): Live {
  const out = {} as Live;
  for (const b of BACKENDS) {
    const m: Record<number, string> = {};
    for (const s of view.get(b.name) ?? []) {
      if (s.state !== "maint") m[slotOf(s)] = `${s.addr}:${s.port} ${s.state}${withWeight ? ` w${s.uweight}` : ""}`;
    }
    out[b.name] = m;
  }
  return out;
}

/** What a node must show: its AZ's origins in be_local, the others in be_fallback, every other server maint. */
function expectedLive(node: Node, slots: [slot: number, n: number, az: string, state: "ready" | "drain"][], weight?: number): Live {
  const out: Live = { be_local: {}, be_fallback: {} };
  for (const [slot, n, az, state] of slots) {
    const ip = `10.0.${az === AZ_A ? 1 : 2}.${n}`;
    out[az === node.az ? "be_local" : "be_fallback"][slot] = `${ip}:${PORT} ${state}${weight !== undefined ? ` w${weight}` : ""}`;
  }
  return out;
}

/**
 * Polls both HAProxy nodes, the table and the fake's completions every
 * SAMPLE_EVERY_MS and records every breach of the invariant, with when it
 * was seen, plus the timings the story asserts on.
 */
class Sampler {
  readonly violations: string[] = [];
  samples = 0;
  /** address -> first slot it was seen live in (any node, any backend). */
  private readonly slotOfAddr = new Map<string, number>();
  /** node:addr -> first time seen in drain. */
  readonly drainSeenAt = new Map<string, number>();
  /** instance id -> drainUntil as read from the table. */
  readonly drainUntil = new Map<string, number>();
  /** instance id -> first sample time the table no longer held it after its drain. */
  readonly leftDrainAt = new Map<string, number>();
  /** Completions with the time they were first seen (10 ms resolution: the fake runs in this process). */
  readonly completed: { hook: string; group: string; instanceId: string; result: string; at: number }[] = [];
  private stopping = false;
  private readonly loop: Promise<void>;
  private readonly watch: NodeJS.Timeout;
  private readonly start = Date.now();

  constructor(
    private readonly nodes: [Node, Node],
    private readonly db: DynamoDBClient,
    private readonly aws: FakeAws,
  ) {
    this.watch = setInterval(() => this.noteCompletions(), 10);
    this.loop = this.run();
  }

  private noteCompletions(): void {
    while (this.completed.length < this.aws.completions.length) {
      this.completed.push({ ...this.aws.completions[this.completed.length]!, at: Date.now() });
    }
  }

  private violation(text: string): void {
    if (this.violations.length < 30) this.violations.push(`+${Date.now() - this.start} ms: ${text}`);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      // Completions are read before the table: an instance completed by then must hold no slot in it.
      this.noteCompletions();
      const completedIds = new Set(this.completed.map((c) => c.instanceId));
      try {
        const [a, b, snapshot] = await Promise.all([readView(this.nodes[0]), readView(this.nodes[1]), readPool(this.db, TABLE, POOL)]);
        if (this.stopping) break;
        this.check([a, b]);
        this.checkTable(snapshot?.slots ?? [], completedIds);
        this.samples++;
      } catch (err) {
        if (!this.stopping) this.violation(`sample failed: ${(err as Error).message}`);
      }
      await delay(SAMPLE_EVERY_MS);
    }
  }

  private check(views: [View, View]): void {
    const now = Date.now();
    const perNode: Map<number, string>[] = [];
    for (const [i, view] of views.entries()) {
      const node = this.nodes[i]!;
      const slots = new Map<number, string>();
      for (const b of BACKENDS) {
        for (const s of view.get(b.name) ?? []) {
          if (s.state === "maint") continue;
          const k = slotOf(s);
          const addr = s.addr ?? "(none)";
          const where = `node ${node.name} ${b.name}/${s.name} ${addr} ${s.state}`;
          const other = slots.get(k);
          if (other !== undefined) this.violation(`${where}: slot ${k} is live in both backends of node ${node.name} (also ${other})`);
          slots.set(k, addr);
          const az = AZ_OF_ADDR(s.addr);
          if (az === undefined) this.violation(`${where}: not an origin address`);
          else if (b.select === "dedicated" && az !== node.az) this.violation(`${where}: dedicated backend of ${node.az} holds an origin of ${az}`);
          else if (b.select === "fallback" && az === node.az) this.violation(`${where}: fallback backend of ${node.az} holds an origin of its own AZ`);
          const first = this.slotOfAddr.get(addr);
          if (first === undefined) this.slotOfAddr.set(addr, k);
          else if (first !== k) this.violation(`${where}: live origin moved from slot ${first} to slot ${k}`);
          if (s.state === "drain" && !this.drainSeenAt.has(`${node.name}:${addr}`)) this.drainSeenAt.set(`${node.name}:${addr}`, now);
        }
      }
      perNode.push(slots);
    }
    for (const [k, addrA] of perNode[0]!) {
      const addrB = perNode[1]!.get(k);
      if (addrB !== undefined && addrB !== addrA) this.violation(`slot ${k} is ${addrA} on node A but ${addrB} on node B`);
    }
  }

  private checkTable(slots: { slot: number; state: string; name?: string; drainUntil?: number }[], completedIds: Set<string>): void {
    const now = Date.now();
    const held = new Set<string>();
    for (const s of slots) {
      if (s.state === "free" || !s.name) continue;
      held.add(s.name);
      if (completedIds.has(s.name)) this.violation(`lifecycle action of ${s.name} completed while it still holds slot ${s.slot} (${s.state})`);
      if (s.state === "drain" && s.drainUntil !== undefined && !this.drainUntil.has(s.name)) this.drainUntil.set(s.name, s.drainUntil);
    }
    for (const id of this.drainUntil.keys()) if (!held.has(id) && !this.leftDrainAt.has(id)) this.leftDrainAt.set(id, now);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.watch);
    await this.loop;
  }
}

interface Story {
  aws: FakeAws;
  db: DynamoDBClient;
  nodes: [Node, Node];
  startServer(id: string): Proc;
  procs: Map<string, Proc>;
}

async function setUp(t: TestContext): Promise<Story> {
  const { dynalite, db } = await dynaliteWithTable(t, TABLE);
  const aws = await startFakeAws({ region: "eu-west-3" });
  t.after(() => aws.stop());

  const common = {
    ...aws.env(),
    HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
    DYNAMODB_TABLE_NAME: TABLE,
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
    INTERVAL: `${INTERVAL_MS}ms`,
    EXPORTER_PORT: "0",
  };
  const procs = new Map<string, Proc>();
  const startServer = (id: string): Proc => {
    const p = startHsdo(id, ["--server"], {
      ...common,
      SERVER_MODE: "aws",
      SERVER_ASG_NAMES: GROUP,
      HSDO_SERVER_AWS_LIFECYCLE_HOOK: HOOK,
      HSDO_SERVER_ID: id,
      SERVER_HAPROXY_BACKEND_SERVER_MIN_WEIGHT: "1",
      SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT: String(MAX_WEIGHT),
      SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT: "1",
      SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL: `${WEIGHT_INTERVAL_MS}ms`,
      HSDO_SERVER_DRAIN: `${DRAIN_MS}ms`,
      HSDO_SERVER_LEASE: `${LEASE_MS}ms`,
      HSDO_SERVER_HEARTBEAT: "400ms",
    });
    t.after(() => p.stop());
    procs.set(id, p);
    return p;
  };

  const body = BACKENDS.map((b) => templateBackend(b.name, b.prefix, SIZE)).join("\n");
  const nodes: Node[] = [];
  for (const [name, az] of [["A", AZ_A], ["B", AZ_B]] as const) {
    const haproxy = await startHaproxy({ body });
    t.after(() => haproxy.stop());
    const cache = mkdtempSync(join(tmpdir(), "hsdo-e2e-cache-"));
    t.after(() => rmSync(cache, { recursive: true, force: true }));
    const client = startHsdo(`client-${name}`, ["--client"], {
      ...common,
      CLIENT_HAPROXY_SOCKET_PATH: haproxy.socket,
      HSDO_CLIENT_AZ: az,
      HSDO_CLIENT_BACKENDS: JSON.stringify(BACKENDS),
      HSDO_CLIENT_CACHE_DIR: cache,
    });
    t.after(() => client.stop());
    procs.set(`client-${name}`, client);
    nodes.push({ name, az, haproxy });
  }
  return { aws, db, nodes: nodes as [Node, Node], startServer, procs };
}

test("e2e: two servers on an ASG over two AZs, two HAProxy nodes: join, ramp, leader killed, lifecycle-hook drain, slot reuse", { timeout: 120_000 }, async (t) => {
  let sampler: Sampler | undefined;
  // Registered first so that it runs first: the sampler must stop before what it polls.
  t.after(() => sampler?.stop());
  const { aws, db, nodes, startServer, procs } = await setUp(t);

  const diag = () =>
    [...procs].map(([name, p]) => `--- ${name} (${p.running() ? "running" : "exited"}):\n${p.output().slice(-2500)}`).join("\n") +
    `\n--- violations:\n${sampler?.violations.join("\n") ?? ""}`;
  const until = async <T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> =>
    waitFor(what, check, { timeoutMs }).catch((e: Error) => assert.fail(`${e.message}\n${diag()}`));

  /** Fails unless both nodes come to show exactly `slots` (each in the backend its AZ says), every other server maint. */
  const converge = async (what: string, slots: [number, number, string, "ready" | "drain"][], weight?: number, timeoutMs = 15_000) => {
    const want = nodes.map((n) => expectedLive(n, slots, weight));
    await until(
      `both nodes: ${what}`,
      async () => {
        const got = await Promise.all(nodes.map(async (n) => liveOf(await readView(n), weight !== undefined)));
        if (!isDeepStrictEqual(got, want)) throw new Error(`nodes show ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
        return true;
      },
      timeoutMs,
    );
  };
  const leader = async () => (await readPool(db, TABLE, POOL))?.head;

  // The fleet as the ASG sees it; setGroup is told the whole list.
  const fleet = new Map<number, FakeInstanceInput>();
  const publishFleet = () => aws.setGroup(GROUP, [...fleet.values()]);
  for (const [n, az] of [[1, AZ_A], [2, AZ_B], [3, AZ_A], [4, AZ_B]] as const) fleet.set(n, origin(n, az));
  publishFleet();
  aws.addLifecycleHook(GROUP, HOOK);

  const s1 = startServer("s1");
  // Start-up waits are generous: a loaded machine compiles several hsdo processes through tsx at once.
  await until("s1 leads and publishes", async () => (await leader())?.leader === "s1", STARTUP_MS);
  const s2 = startServer("s2");
  await until("s2 stands by", () => s2.output().includes("standing by"), STARTUP_MS);
  sampler = new Sampler(nodes, db, aws);

  // 1. Four origins, two per AZ, take slots 1..4 in launch order and ramp to full weight on both nodes.
  await converge("origins 1-4 at full weight (clients started)", [[1, 1, AZ_A, "ready"], [2, 2, AZ_B, "ready"], [3, 3, AZ_A, "ready"], [4, 4, AZ_B, "ready"]], MAX_WEIGHT, STARTUP_MS);

  // 2. More join. Origin 5 launched first but is still Pending: origin 6, ready, takes the lowest free slot.
  fleet.set(5, origin(5, AZ_B, "Pending"));
  fleet.set(6, origin(6, AZ_A));
  publishFleet();
  await converge("origin 6 in slot 5 while origin 5 is Pending", [[1, 1, AZ_A, "ready"], [2, 2, AZ_B, "ready"], [3, 3, AZ_A, "ready"], [4, 4, AZ_B, "ready"], [5, 6, AZ_A, "ready"]]);
  const ramping = await readPool(db, TABLE, POOL);
  assert.ok(!ramping?.slots.some((s) => s.name === instanceId(5)), "a Pending instance holds no slot");

  // The leader dies mid-ramp; origin 5 comes into service meanwhile. The standby must carry on.
  const epochBefore = (await leader())!.epoch;
  s1.signal("SIGKILL");
  await s1.exited;
  fleet.set(5, origin(5, AZ_B));
  aws.updateInstance(instanceId(5), { lifecycleState: "InService" });
  await until("s2 takes over", async () => (await leader())?.leader === "s2", 20_000);
  assert.ok((await leader())!.epoch > epochBefore, "the new leader's epoch is higher");
  const full6: [number, number, string, "ready"][] = [[1, 1, AZ_A, "ready"], [2, 2, AZ_B, "ready"], [3, 3, AZ_A, "ready"], [4, 4, AZ_B, "ready"], [5, 6, AZ_A, "ready"], [6, 5, AZ_B, "ready"]];
  await converge("origins 5 and 6 ramped to full weight under s2", full6, MAX_WEIGHT);
  const s3 = startServer("s3");
  await until("s3 stands by", () => s3.output().includes("standing by"), STARTUP_MS);

  // 3. Scale-in through the lifecycle hook: origin 3 (slot 3, AZ a) waits in Terminating:Wait.
  fleet.set(3, origin(3, AZ_A, "Terminating:Wait"));
  aws.updateInstance(instanceId(3), { lifecycleState: "Terminating:Wait" });
  await converge("origin 3 draining in slot 3", full6.map(([k, n, az, st]) => [k, n, az, k === 3 ? "drain" : st]));
  const done3 = await until("lifecycle action of origin 3 completed", () => sampler!.completed.find((c) => c.instanceId === instanceId(3)));
  assert.deepEqual({ ...done3, at: 0 }, { hook: HOOK, group: GROUP, instanceId: instanceId(3), result: "CONTINUE", at: 0 });
  const drainUntil3 = sampler.drainUntil.get(instanceId(3));
  assert.ok(drainUntil3 !== undefined, "the sampler saw slot 3 in drain in the table");
  assert.ok(done3.at >= drainUntil3, `completed at ${done3.at}, before the drain ended at ${drainUntil3}`);
  for (const node of nodes) {
    const seen = sampler.drainSeenAt.get(`${node.name}:10.0.1.3`);
    assert.ok(seen !== undefined && seen < done3.at, `node ${node.name} showed origin 3 in drain before the completion (seen ${seen}, completed ${done3.at})`);
  }
  const left3 = await until("the table freed slot 3", () => sampler!.leftDrainAt.get(instanceId(3)));
  t.diagnostic(`origin 3: lifecycle action completed ${done3.at - drainUntil3} ms after drainUntil; table first sampled with slot 3 free at ${left3 - done3.at} ms from the completion`);
  // The ASG terminates it; then a newcomer (AZ b) takes the freed slot.
  fleet.delete(3);
  aws.removeInstance(instanceId(3));
  const without3 = full6.filter(([k]) => k !== 3);
  await converge("slot 3 maint on both nodes", without3);
  fleet.set(7, origin(7, AZ_B));
  publishFleet();
  const with7: [number, number, string, "ready"][] = [...without3, [3, 7, AZ_B, "ready"]];
  await converge("origin 7 in slot 3 at full weight", with7, MAX_WEIGHT);

  // 4. Another scale-in (origin 2, slot 2, AZ b), and the leader is killed during its drain:
  // s3 must end the drain and complete the lifecycle action.
  fleet.set(2, origin(2, AZ_B, "Terminating:Wait"));
  aws.updateInstance(instanceId(2), { lifecycleState: "Terminating:Wait" });
  await until("slot 2 drains in the table", async () => (await readPool(db, TABLE, POOL))?.slots.find((s) => s.slot === 2)?.state === "drain");
  const s2Epoch = (await leader())!.epoch;
  s2.signal("SIGKILL");
  await s2.exited;
  const killedAt = Date.now();
  await converge("origin 2 draining in slot 2 with its leader dead", with7.map(([k, n, az, st]) => [k, n, az, k === 2 ? "drain" : st]));
  const done2 = await until("s3 completes the lifecycle action of origin 2", () => sampler!.completed.find((c) => c.instanceId === instanceId(2)), 20_000);
  assert.deepEqual({ ...done2, at: 0 }, { hook: HOOK, group: GROUP, instanceId: instanceId(2), result: "CONTINUE", at: 0 });
  assert.ok(done2.at > killedAt, "the action was completed by the new leader, after the kill");
  const drainUntil2 = sampler.drainUntil.get(instanceId(2));
  assert.ok(drainUntil2 !== undefined && done2.at >= drainUntil2, `completed at ${done2.at}, drain until ${drainUntil2}`);
  const head = (await leader())!;
  assert.equal(head.leader, "s3");
  assert.ok(head.epoch > s2Epoch);
  fleet.delete(2);
  aws.removeInstance(instanceId(2));
  const without2 = with7.filter(([k]) => k !== 2);
  await converge("slot 2 maint on both nodes", without2);
  fleet.set(8, origin(8, AZ_A));
  publishFleet();
  await converge("origin 8 in slot 2 at full weight", [...without2, [2, 8, AZ_A, "ready"]], MAX_WEIGHT);

  await sampler.stop();
  assert.deepEqual(sampler.violations, [], diag());
  // Roughly one sample per SAMPLE_EVERY_MS over the story; far fewer means the checks barely ran.
  assert.ok(sampler.samples >= 50, `only ${sampler.samples} samples`);
  t.diagnostic(`${sampler.samples} samples of both nodes and the table, no violation`);
  assert.deepEqual(
    aws.completions.map((c) => c.instanceId),
    [instanceId(3), instanceId(2)],
    "each leaving instance's lifecycle action completed exactly once",
  );
  assert.deepEqual(aws.protocolErrors, []);
  for (const name of ["s3", "client-A", "client-B"]) assert.ok(procs.get(name)!.running(), `${name} is still running\n${diag()}`);
});
