// A randomized fault soak: 2 `hsdo --server` on an ASG of the fake AWS,
// 3 real HAProxy nodes (master-worker, with the server-state file lines),
// each with its `hsdo --client`, and dynalite, all in processes of their own.
// A seeded schedule injects the routine events: churn (launches, scale-ins
// through Terminating, instances gone), servers and clients SIGKILLed and
// SIGSTOPped, dynalite frozen and restarted, HAProxy restarted and reloaded,
// the source failing and answering an empty group. A checker samples every
// node and the table throughout:
//   - no address is ever live in two slots of a node, nor in two slots of the table;
//   - an address, once in slot k (table or any node), is never in another slot,
//     unless its target left the source for a while (unhealthy) and came back;
//   - no write of a deposed term lands (an item stamped below the head's epoch
//     with a generation that term never published);
// and once the faults end and the table settles, every node equals the table
// within 2 client intervals.
// The seed is printed; `HSDO_SOAK_SEED=<seed> npm test -- soak` replays it.
// `HSDO_SOAK_MS` sets the length of the fault phase (default 60 s).
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseServersState, templateLine, type ActualServer } from "@hsdo/client";
import type { Slot, Snapshot } from "@hsdo/core";
import { dynaliteWithTable, testDynamoClient, startHaproxy, type HaproxyHandle, startHsdo, readPool, waitFor, type Proc, startFakeAws, instanceId, type FakeAws, type FakeInstanceInput, prng } from "@hsdo/testkit";

const TABLE = "hsdo";
const POOL = "default";
const GROUP = "soak-asg";
const SIZE = 10;
const PREFIX = "srv";
const PORT = 8080;
const SERVER_INTERVAL_MS = 500;
const CLIENT_INTERVAL_MS = 500;
const MAX_WEIGHT = 3;
const LEASE_MS = 2500;
const SOAK_MS = Number(process.env.HSDO_SOAK_MS ?? 60_000);
const SEED = Number(process.env.HSDO_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const STARTUP_MS = 60_000;

interface Node {
  name: string;
  haproxy: HaproxyHandle;
  client?: Proc;
  incarnation: number;
  cache: string;
}

function slotOf(s: ActualServer): number {
  return Number(s.name.slice(PREFIX.length));
}

/** What the checker saw, and every breach with when and where. */
class Checker {
  readonly violations: string[] = [];
  samples = 0;
  tableSamples = 0;
  private readonly slotOfAddr = new Map<string, { slot: number; where: string }>();
  /** epoch -> the lowest head generation seen under it: what that term found when it took over. */
  private readonly takeoverGeneration = new Map<number, number>();
  private readonly start = Date.now();
  private stopping = false;
  private readonly loop: Promise<void>;
  private readonly db;
  private readonly distinct = new Set<string>();

  constructor(
    private readonly nodes: Node[],
    endpoint: string,
  ) {
    this.db = testDynamoClient(endpoint);
    this.loop = this.run();
  }

  /** Each distinct breach once, with when it was first seen. */
  private violation(text: string): void {
    if (this.distinct.has(text)) return;
    this.distinct.add(text);
    if (this.violations.length < 40) this.violations.push(`+${Date.now() - this.start} ms: ${text}`);
  }

  /**
   * Addresses whose target left the source for a while (made unhealthy:
   * drained, freed): their old slot may have gone to a newcomer meanwhile,
   * so their next slot may be another. Any other move is a live target
   * moved, through every fault (source outages and valve releases
   * included: a freed slot remembers its target).
   */
  readonly left = new Set<string>();

  private seen(addr: string, slot: number, where: string): void {
    const first = this.slotOfAddr.get(addr);
    if (first === undefined || (first.slot !== slot && this.left.delete(addr))) this.slotOfAddr.set(addr, { slot, where });
    else if (first.slot !== slot) this.violation(`${where}: ${addr} in slot ${slot}, but it was in slot ${first.slot} (${first.where})`);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const views = await Promise.all(
        this.nodes.map((n) =>
          n.haproxy
            .command("show servers state be")
            .then((text) => parseServersState(text).get("be") ?? [])
            .catch(() => undefined),
        ),
      );
      const table = await Promise.race([readPool(this.db, TABLE, POOL).catch(() => undefined), delay(1000).then(() => undefined)]);
      if (this.stopping) break;
      views.forEach((view, i) => view && this.checkNode(this.nodes[i]!.name, view));
      if (table) this.checkTable(table);
      this.samples++;
      await delay(150);
    }
  }

  private checkNode(name: string, servers: ActualServer[]): void {
    const slotsByAddr = new Map<string, number>();
    for (const s of servers) {
      if (s.state === "maint" || s.addr === undefined) continue;
      const addr = `${s.addr}:${s.port}`;
      const k = slotOf(s);
      const other = slotsByAddr.get(addr);
      if (other !== undefined) this.violation(`node ${name}: ${addr} live in slots ${other} and ${k}`);
      slotsByAddr.set(addr, k);
      this.seen(s.addr, k, `node ${name} ${s.name} ${s.state}`);
    }
  }

  private checkTable(snap: Snapshot): void {
    this.tableSamples++;
    const head = snap.head;
    const low = this.takeoverGeneration.get(head.epoch);
    if (low === undefined || head.generation < low) this.takeoverGeneration.set(head.epoch, head.generation);
    const taken = this.takeoverGeneration.get(head.epoch)!;
    const slotsByAddr = new Map<string, number>();
    for (const s of snap.slots as Slot[]) {
      if (s.epoch !== undefined && s.epoch > head.epoch) {
        // a stamp of a newer term under way: not a deposed write
      } else if (s.epoch !== undefined && s.epoch < head.epoch && (s.generation ?? 0) > taken) {
        this.violation(`table slot ${s.slot}: epoch ${s.epoch} generation ${s.generation} landed under term ${head.epoch}, which took over at generation ${taken}`);
      }
      if (s.state === "free" || s.addr === undefined) continue;
      const other = slotsByAddr.get(s.addr);
      if (other !== undefined) this.violation(`table: ${s.addr} in slots ${other} and ${s.slot}`);
      slotsByAddr.set(s.addr, s.slot);
      this.seen(s.addr, s.slot, `table generation ${head.generation} slot ${s.slot} ${s.state}`);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.db.destroy();
  }
}

test(`fault soak (seed ${SEED}): no address in two slots, no live target moved, no deposed write, every node equal to the table after the faults`, { timeout: SOAK_MS + 240_000 }, async (t: TestContext) => {
  console.log(`soak: seed ${SEED} (replay: HSDO_SOAK_SEED=${SEED} npm test -- soak)`);
  t.diagnostic(`seed ${SEED}`);
  const random = prng(SEED);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const chance = (p: number) => random() < p;

  let checker: Checker | undefined;
  t.after(() => checker?.stop());
  const { dynalite } = await dynaliteWithTable(t, TABLE);
  const aws = await startFakeAws({ region: "eu-west-3" });
  t.after(() => aws.stop());

  const common = {
    ...aws.env(),
    HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
    DYNAMODB_TABLE_NAME: TABLE,
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
    EXPORTER_PORT: "0",
  };
  const procs = new Map<string, Proc>();
  const track = (name: string, p: Proc) => {
    procs.set(name, p);
    t.after(() => p.stop("SIGKILL"));
    return p;
  };

  // Servers: a new id per incarnation, as a restarted process on another host would have.
  const servers = new Map<string, { proc: Proc; incarnation: number }>();
  const startServer = (name: string) => {
    const incarnation = (servers.get(name)?.incarnation ?? 0) + 1;
    const id = `${name}-${incarnation}`;
    const proc = track(
      id,
      startHsdo(id, ["--server"], {
        ...common,
        INTERVAL: `${SERVER_INTERVAL_MS}ms`,
        SERVER_MODE: "aws",
        SERVER_ASG_NAMES: GROUP,
        HSDO_SERVER_ID: id,
        SERVER_HAPROXY_BACKEND_SERVER_MIN_WEIGHT: "1",
        SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT: String(MAX_WEIGHT),
        SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT: "1",
        SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL: "300ms",
        HSDO_SERVER_DRAIN: "1s",
        HSDO_SERVER_LEASE: `${LEASE_MS}ms`,
        HSDO_SERVER_HEARTBEAT: "500ms",
        HSDO_SERVER_CONFIRM_TICKS: "3",
      }),
    );
    servers.set(name, { proc, incarnation });
  };

  const nodes: Node[] = [];
  for (const name of ["A", "B", "C"]) {
    const dir = mkdtempSync(join(tmpdir(), `hsdo-soak-${name}-`));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const haproxy = await startHaproxy({
      masterWorker: true,
      global: [`server-state-file ${join(dir, "server-state")}`],
      defaults: ["load-server-state-from-file global"],
      body: ["backend be", "    balance roundrobin", `    ${templateLine({ prefix: PREFIX }, SIZE).replace(/ check$/, "")}`, ""].join("\n"),
    });
    t.after(() => haproxy.stop());
    nodes.push({ name, haproxy, incarnation: 0, cache: dir });
  }
  const startClient = (node: Node) => {
    node.incarnation += 1;
    node.client = track(
      `client-${node.name}-${node.incarnation}`,
      startHsdo(`client-${node.name}-${node.incarnation}`, ["--client"], {
        ...common,
        INTERVAL: `${CLIENT_INTERVAL_MS}ms`,
        CLIENT_HAPROXY_SOCKET_PATH: node.haproxy.socket,
        HSDO_CLIENT_BACKENDS: JSON.stringify([{ name: "be", prefix: PREFIX, port: PORT, select: "all" }]),
        HSDO_CLIENT_CACHE_DIR: node.cache,
        HSDO_CLIENT_SERVER_STATE_FILE: join(node.cache, "server-state"),
      }),
    );
  };

  // The fleet: every launch gets a new id and address, never reused, so an address names one target for ever.
  let launched = 0;
  const fleet = new Map<string, FakeInstanceInput>();
  const launch = () => {
    launched += 1;
    const n = launched;
    const input: FakeInstanceInput = {
      id: instanceId(n),
      ip: `10.9.${Math.floor(n / 250)}.${(n % 250) + 1}`,
      az: "eu-west-3a",
      launchTime: Date.UTC(2026, 0, 1) + n * 1000,
      lifecycleState: "InService",
      healthStatus: "Healthy",
    };
    fleet.set(input.id, input);
  };
  let emptyAnswer = false;
  const publishFleet = () => aws.setGroup(GROUP, emptyAnswer ? [] : [...fleet.values()]);
  for (let i = 0; i < 7; i++) launch();
  publishFleet();

  const diag = () =>
    [...procs]
      .filter(([, p]) => p.running() || p.output().length > 0)
      .slice(-8)
      .map(([name, p]) => `--- ${name} (${p.running() ? "running" : "exited"}):\n${p.output().slice(-1500)}`)
      .join("\n") + `\n--- seed ${SEED}; violations:\n${checker?.violations.join("\n") ?? ""}`;

  startServer("s1");
  startServer("s2");
  for (const node of nodes) startClient(node);
  const head = async () => (await readPool(testDynamoClient(dynalite.endpoint), TABLE, POOL).catch(() => undefined))?.head;
  await waitFor("a leader publishes", async () => ((await head())?.generation ?? 0) > 0, { timeoutMs: STARTUP_MS }).catch((e: Error) => assert.fail(`${e.message}\n${diag()}`));
  checker = new Checker(nodes, dynalite.endpoint);

  // The fault schedule. Each step picks one event; frozen things are thawed within a few seconds.
  const frozen = new Map<string, { thaw: () => void; at: number }>();
  const log: string[] = [];
  const started = Date.now();
  const note = (what: string) => log.push(`+${Date.now() - started} ms ${what}`);
  const thawDue = (force = false) => {
    for (const [k, f] of frozen) {
      if (force || Date.now() >= f.at) {
        f.thaw();
        frozen.delete(k);
        note(`thaw ${k}`);
      }
    }
  };
  const freeze = (key: string, pid: number, forMs: number) => {
    if (frozen.has(key)) return;
    process.kill(pid, "SIGSTOP");
    frozen.set(key, { thaw: () => process.kill(pid, "SIGCONT"), at: Date.now() + forMs });
    note(`freeze ${key} ${forMs} ms`);
  };
  let dynaliteDown = false;
  let emptyUntil = 0;

  while (Date.now() - started < SOAK_MS) {
    thawDue();
    if (emptyAnswer && Date.now() >= emptyUntil) {
      emptyAnswer = false;
      publishFleet();
      note("source answers the group again");
    }
    const serverNames = [...servers.keys()];
    const event = pick([
      "launch", "launch", "scale-in", "gone", "gone", "unhealthy",
      "kill-server", "freeze-server", "kill-client", "freeze-client",
      "freeze-dynalite", "restart-dynalite", "restart-haproxy", "reload-haproxy", "reload-haproxy",
      "source-errors", "empty-answer",
    ] as const);
    try {
      switch (event) {
        case "launch":
          if (fleet.size < SIZE + 2) launch();
          publishFleet();
          note(`launch (fleet ${fleet.size})`);
          break;
        case "scale-in": {
          const inService = [...fleet.values()].filter((i) => i.lifecycleState === "InService");
          if (inService.length > 3) {
            const victim = pick(inService);
            victim.lifecycleState = "Terminating";
            publishFleet();
            note(`scale-in ${victim.id}`);
          }
          break;
        }
        case "gone": {
          const leaving = [...fleet.values()].filter((i) => i.lifecycleState !== "InService" || i.healthStatus !== "Healthy");
          const victim = leaving.length > 0 && chance(0.7) ? pick(leaving) : fleet.size > 4 ? pick([...fleet.values()]) : undefined;
          if (victim) {
            fleet.delete(victim.id);
            publishFleet();
            note(`gone ${victim.id}`);
          }
          break;
        }
        case "unhealthy": {
          const healthy = [...fleet.values()].filter((i) => i.healthStatus === "Healthy" && i.lifecycleState === "InService");
          if (healthy.length > 3) {
            const victim = pick(healthy);
            victim.healthStatus = "Unhealthy";
            if (victim.ip) checker.left.add(victim.ip);
            publishFleet();
            note(`unhealthy ${victim.id}`);
          }
          break;
        }
        case "kill-server": {
          const name = pick(serverNames);
          const s = servers.get(name)!;
          if (frozen.has(name)) break;
          s.proc.signal("SIGKILL");
          await s.proc.exited;
          startServer(name);
          note(`kill ${name}-${s.incarnation}, restarted`);
          break;
        }
        case "freeze-server": {
          const name = pick(serverNames);
          freeze(name, servers.get(name)!.proc.pid, 1000 + random() * (LEASE_MS * 1.6));
          break;
        }
        case "kill-client": {
          const node = pick(nodes);
          if (frozen.has(`client-${node.name}`) || !node.client) break;
          node.client.signal("SIGKILL");
          await node.client.exited;
          startClient(node);
          note(`kill client ${node.name}, restarted`);
          break;
        }
        case "freeze-client": {
          const node = pick(nodes);
          if (node.client) freeze(`client-${node.name}`, node.client.pid, 500 + random() * 3000);
          break;
        }
        case "freeze-dynalite":
          if (!dynaliteDown) freeze("dynalite", dynalite.proc.pid, 500 + random() * 3000);
          break;
        case "restart-dynalite":
          if (!dynaliteDown && !frozen.has("dynalite")) {
            dynaliteDown = true;
            await dynalite.stop();
            note("dynalite stopped");
            await delay(300 + random() * 2000);
            await dynalite.start();
            dynaliteDown = false;
            note("dynalite started");
          }
          break;
        case "restart-haproxy": {
          const node = pick(nodes);
          await node.haproxy.restart();
          note(`restart haproxy ${node.name}`);
          break;
        }
        case "reload-haproxy": {
          const node = pick(nodes);
          await node.haproxy.reload();
          note(`reload haproxy ${node.name}`);
          break;
        }
        case "source-errors":
          aws.fail("DescribeAutoScalingGroups", pick(["throttle", "internal"] as const), 1 + Math.floor(random() * 6));
          note("source errors");
          break;
        case "empty-answer":
          if (!emptyAnswer) {
            emptyAnswer = true;
            emptyUntil = Date.now() + 500 + random() * 3000;
            publishFleet();
            note("source answers an empty group");
          }
          break;
      }
    } catch (err) {
      assert.fail(`fault ${event} failed: ${(err as Error).message}\n${log.slice(-20).join("\n")}\n${diag()}`);
    }
    await delay(300 + random() * 900);
  }

  // The faults end: everything thawed and running, the source answering; instances terminating are gone, the others healthy.
  thawDue(true);
  emptyAnswer = false;
  for (const i of [...fleet.values()]) {
    if (i.lifecycleState !== "InService") fleet.delete(i.id);
    else i.healthStatus = "Healthy";
  }
  while (fleet.size > SIZE) fleet.delete([...fleet.keys()][0]!);
  publishFleet();
  note("faults end");
  for (const [name, s] of servers) if (!s.proc.running()) startServer(name);
  for (const node of nodes) if (!node.client?.running()) startClient(node);

  // The table settles: every instance of the fleet ready at full weight, nothing else, generation still.
  const db = testDynamoClient(dynalite.endpoint);
  t.after(() => db.destroy());
  const wanted = [...fleet.values()].map((i) => i.ip).sort();
  let settled: Snapshot | undefined;
  await waitFor(
    "the table settles on the fleet",
    async () => {
      const a = await readPool(db, TABLE, POOL);
      const live = (a?.slots ?? []).filter((s) => s.state !== "free");
      const ok = a && JSON.stringify(live.map((s) => s.addr).sort()) === JSON.stringify(wanted) && live.every((s) => s.state === "ready" && s.weight === MAX_WEIGHT);
      if (!ok) throw new Error(`table: ${JSON.stringify(live.map((s) => `${s.slot}:${s.addr}:${s.state}:w${s.weight}`))}, fleet ${JSON.stringify(wanted)}`);
      await delay(3 * SERVER_INTERVAL_MS);
      const b = await readPool(db, TABLE, POOL);
      if (b?.head.generation !== a.head.generation) throw new Error("still publishing");
      settled = b;
      return true;
    },
    { timeoutMs: 90_000, intervalMs: 200 },
  ).catch((e: Error) => assert.fail(`${e.message}\n${log.slice(-30).join("\n")}\n${diag()}`));
  const settledAt = Date.now();

  // Every client is up (a restarted one may still be starting), then every node equals the table within 2 intervals.
  await waitFor("every client started", () => nodes.every((n) => n.client?.output().includes("hsdo started")), { timeoutMs: STARTUP_MS });
  const from = Math.max(settledAt, Date.now());
  const expected = new Map<number, string>();
  for (const s of settled!.slots) if (s.state !== "free") expected.set(s.slot, `${s.addr}:${PORT} ${s.state} w${s.weight}`);
  const mismatch = async () => {
    const out: string[] = [];
    for (const node of nodes) {
      const view = parseServersState(await node.haproxy.command("show servers state be")).get("be") ?? [];
      const live = new Map(view.filter((s) => s.state !== "maint").map((s) => [slotOf(s), `${s.addr}:${s.port} ${s.state} w${s.uweight}`]));
      if (JSON.stringify([...live].sort()) !== JSON.stringify([...expected].sort())) out.push(`node ${node.name}: ${JSON.stringify([...live].sort())}`);
    }
    return out;
  };
  let last: string[] = [];
  await waitFor(
    "every node equal to the table",
    async () => {
      last = await mismatch();
      return last.length === 0;
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  ).catch(() => assert.fail(`nodes differ from the table ${JSON.stringify([...expected].sort())}:\n${last.join("\n")}\n${diag()}`));
  const tookMs = Date.now() - from;

  await checker.stop();
  t.diagnostic(`seed ${SEED}: ${log.length} events, ${launched} instances launched, ${checker.samples} samples (${checker.tableSamples} of the table); nodes equal to the table ${tookMs} ms after it settled`);
  assert.deepEqual(checker.violations, [], `seed ${SEED}\n${log.join("\n")}\n${diag()}`);
  assert.ok(checker.samples >= SOAK_MS / 1000, `only ${checker.samples} samples`);
  assert.ok(tookMs <= 2 * CLIENT_INTERVAL_MS, `nodes equal to the table ${tookMs} ms after it settled and every client was up (limit 2 intervals, ${2 * CLIENT_INTERVAL_MS} ms)`);
  assert.deepEqual(aws.protocolErrors, []);
});
