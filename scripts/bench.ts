// `npm run bench`: the hot paths, timed. Machines are noisy (CI, shared
// cores), so every figure is a median over repeated runs, the spread is shown
// next to it, and scaling is read from ratios rather than absolute times.
// Nothing here is asserted: tests check behaviour, this shows cost.
//
//   assign   core's assignSlots, one server tick with churn, by pool size
//   plan     client's plan(): 1000 servers that already match, then 10% off
//   parse    parseServersState on a real HAProxy answer of 5000 servers
//   haproxy  a real reconcile tick on HAProxy (500 servers): first, steady
//   memory   heap after 1000 ticks of assign on 1000 slots (no growth)
//   e2e      real processes (dynalite, hsdo --server on a static file,
//            hsdo --client, HAProxy), 500 slots at a 1 s interval: cold
//            start of an empty pool, then 10% out / 10% in on the full pool,
//            each until HAProxy shows it (targets printed next to them)
//   startup  the `hsdo` process, compiled (npm run build) and through tsx:
//            `hsdo --help`, `hsdo --client --once` on 500 slots (start-up to
//            the first tick applied), and a running client's RSS at 500 slots
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { assignSlots, type AssignConfig, type BackendConfig, type Slot, type Snapshot, type Target } from "@hsdo/core";
import { Reconciler, RuntimeApi, desiredServers, parseServersState, plan, type ActualServer, type ClientIdentity, type SetServer } from "@hsdo/client";
import { setTimeout as delay } from "node:timers/promises";
import {
  ROOT,
  cleanEnv,
  createTestTable,
  dynaliteWithTable,
  freePort,
  metricValue,
  startDynalite,
  startHaproxy,
  startHsdo,
  startProc,
  startPublisher,
  templateBackend,
  waitFor,
  writeTargets,
  type Proc,
  prng,
  type StaticTarget,
} from "@hsdo/testkit";
import { ensureHaproxy } from "./haproxy-preflight.mjs";

const ASSIGN_CFG = (size: number): AssignConfig => ({
  size,
  weight: { min: 1, max: 10, step: 1, intervalMs: 30_000 },
  drainMs: 30_000,
});
const TICK_MS = 5_000;
const CLIENT: ClientIdentity = { az: "", groups: [] };

interface Row {
  name: string;
  median: number;
  min: number;
  max: number;
  unit: string;
  runs: number;
  note: string;
}
const rows: Row[] = [];

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function record(name: string, samples: number[], unit: string, note = ""): number {
  const m = median(samples);
  rows.push({ name, median: m, min: Math.min(...samples), max: Math.max(...samples), unit, runs: samples.length, note });
  return m;
}


function target(n: number, launchedAt: number): Target {
  return { id: `i-${n.toString(16).padStart(17, "0")}`, addr: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, group: "asg-a", az: "eu-west-1a", launchedAt, health: "ready" };
}

/**
 * A fleet of 80% of `size` that loses and gains 1% of its targets every tick
 * (at least one): far more churn than a spot fleet sees, so that drains,
 * frees, new placements and ramp steps all happen on every tick. The
 * server's state carries over from tick to tick.
 */
function churnSimulation(size: number, seed: number) {
  const random = prng(seed);
  const cfg = ASSIGN_CFG(size);
  let now = Date.UTC(2026, 0, 1);
  let next = 1;
  let fleet: Target[] = Array.from({ length: Math.floor(size * 0.8) }, () => target(next++, now));
  // The first fleet has been there for an hour: at full weight, so only newcomers ramp.
  let slots: Slot[] = assignSlots([], fleet, now - 3_600_000, cfg).slots;
  const churn = Math.max(1, Math.floor(size * 0.01));
  return {
    /** Prepares the next source answer (not timed), runs one assignment (timed); returns ms spent and slots changed. */
    tick(): { ms: number; changed: number } {
      now += TICK_MS;
      for (let k = 0; k < churn && fleet.length > 0; k++) fleet.splice(Math.floor(random() * fleet.length), 1);
      fleet = [...fleet, ...Array.from({ length: churn }, () => target(next++, now))];
      const t0 = performance.now();
      const r = assignSlots(slots, fleet, now, cfg);
      const ms = performance.now() - t0;
      slots = r.slots;
      return { ms, changed: r.changed.length };
    },
  };
}

function benchAssign(): void {
  const perSize = new Map<number, number>();
  for (const size of [100, 1000, 5000]) {
    const ticks = size >= 5000 ? 60 : size >= 1000 ? 300 : 1000;
    const runs: number[] = [];
    let changed = 0;
    for (let run = 0; run < 8; run++) {
      const sim = churnSimulation(size, run + 1);
      // Warm-up past one full ramp (9 steps of 30 s at 5 s ticks): from then on every tick has as many joins, drains and ramp steps.
      for (let i = 0; i < 60; i++) sim.tick();
      let total = 0;
      for (let i = 0; i < ticks; i++) {
        const r = sim.tick();
        total += r.ms;
        changed += r.changed;
      }
      if (run > 0) runs.push((total / ticks) * 1000); // the first run warms the JIT for this size
    }
    const perTick = changed / (8 * ticks);
    const m = median(runs);
    perSize.set(size, m);
    record(`assignSlots, ${size} slots, 1% churn`, runs, "µs/tick", `${(m / size).toFixed(2)} µs/slot; ${perTick.toFixed(1)} slots changed/tick (joins, drains, frees, ramp steps)`);
  }
  for (const [big, small] of [
    [1000, 100],
    [5000, 100],
  ] as const) {
    const ratio = perSize.get(big)! / perSize.get(small)!;
    rows.push({ name: `  ratio ${big} / ${small} slots`, median: ratio, min: NaN, max: NaN, unit: "×", runs: 0, note: `${big / small}× the slots (linear: ~${big / small})` });
  }
}

/** HAProxy's view of a backend that already matches the snapshot, as parseServersState would return it. */
function matchingActual(snapshot: Snapshot, backend: BackendConfig): ActualServer[] {
  // A kept server (none in these snapshots) is left as HAProxy has it: shown here as maint.
  const asSet = (d: ReturnType<typeof desiredServers>[number]): SetServer => (d.state === "keep" ? { server: d.server, slot: d.slot, state: "maint" } : d);
  return desiredServers(snapshot, backend, CLIENT).map(asSet).map((d, i) => ({
    backend: backend.name,
    backendId: 2,
    name: d.server,
    id: i + 1,
    addr: d.addr ?? "127.0.0.2",
    port: d.port ?? 80,
    opState: d.state === "maint" ? 0 : 2,
    adminState: d.state === "maint" ? 5 : d.state === "drain" ? 12 : 4,
    adminFlags: d.state === "maint" ? ["FMAINT", "CMAINT"] : d.state === "drain" ? ["CMAINT", "FDRAIN"] : ["CMAINT"],
    state: d.state,
    inMaintenance: d.state === "maint",
    uweight: d.weight ?? 1,
    iweight: 1,
  }));
}

function snapshotOf(size: number, variant = 0): Snapshot {
  const slots: Slot[] = Array.from({ length: size }, (_, i) => {
    const n = i + 1;
    // One slot in ten free, one in twenty draining: a realistic mix.
    if (n % 10 === 0) return { slot: n, state: "free", weight: 0 };
    return {
      slot: n,
      state: n % 20 === 5 ? "drain" : "ready",
      addr: `10.${variant}.${n >> 8}.${n & 255}`,
      port: 8080,
      name: `i-${n}`,
      group: "asg-a",
      az: "eu-west-1a",
      weight: 10 + variant,
    };
  });
  return { pool: "bench", head: { generation: 1, epoch: 1, leader: "bench", updatedAt: 0, size }, slots, invalid: [] };
}

function benchPlan(): void {
  const backend: BackendConfig = { name: "be_bench", prefix: "srv", pool: "bench", select: "all", allInFallback: false };
  const snapshot = snapshotOf(1000);
  const desired = desiredServers(snapshot, backend, CLIENT);
  const same = matchingActual(snapshot, backend);
  // 10% of the servers off: the weight of one server in ten changed by hand.
  const off = same.map((s, i) => (i % 10 === 3 ? { ...s, uweight: s.uweight + 1 } : s));
  const cases = [
    { name: "plan(), 1000 servers, all matching", actual: same, samples: [] as number[] },
    { name: "plan(), 1000 servers, 10% changed", actual: off, samples: [] as number[] },
  ];
  // Both cases warm up first, then alternate, so neither pays for the JIT or for the other's garbage.
  for (const c of cases) for (let i = 0; i < 1000; i++) plan(desired, c.actual, backend);
  for (let run = 0; run < 10; run++) {
    for (const c of cases) {
      const reps = 200;
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) plan(desired, c.actual, backend);
      c.samples.push(((performance.now() - t0) / reps) * 1000);
    }
  }
  for (const c of cases) record(c.name, c.samples, "µs/call", `${plan(desired, c.actual, backend).commands.length} commands`);
}

function benchParse(text: string, servers: number): void {
  const lines = text.split("\n").length;
  const samples: number[] = [];
  let parsed = 0;
  for (let run = 0; run < 20; run++) {
    const t0 = performance.now();
    parsed = parseServersState(text).get("be_parse")?.length ?? 0;
    samples.push(performance.now() - t0);
  }
  if (parsed !== servers) throw new Error(`parseServersState read ${parsed} servers, expected ${servers}`);
  record(`parseServersState, ${servers} servers`, samples.slice(2), "ms/call", `${lines} lines, ${(text.length / 1024).toFixed(0)} KiB, real HAProxy answer`);
}

async function benchHaproxy(): Promise<string> {
  const SIZE = 500;
  const PARSE = 5000;
  const haproxy = await startHaproxy({ body: [templateBackend("be_bench", "srv", SIZE), templateBackend("be_parse", "p", PARSE)].join("\n") });
  try {
    const backend: BackendConfig = { name: "be_bench", prefix: "srv", pool: "bench", select: "all", allInFallback: false };
    const api = new RuntimeApi({ socket: haproxy.socket });
    const reconciler = new Reconciler({ api, backends: [backend], client: CLIENT });
    const allFree: Snapshot = { ...snapshotOf(SIZE), slots: snapshotOf(SIZE).slots.map((s) => ({ slot: s.slot, state: "free", weight: 0 })) };
    const first: number[] = [];
    const steady: number[] = [];
    let firstCommands = 0;
    let steadyCommands = 0;
    for (let round = 0; round < 15; round++) {
      // Every round starts from all servers in maint, and moves them to a new address and weight.
      const reset = await reconciler.tick(allFree);
      if (reset.failed.length) throw new Error(`HAProxy refused: ${reset.failed[0]?.text}`);
      const full = snapshotOf(SIZE, round % 2);
      let t0 = performance.now();
      const a = await reconciler.tick(full);
      const firstMs = performance.now() - t0;
      if (a.failed.length || a.problems.length) throw new Error(`first tick: ${a.failed[0]?.text ?? a.problems[0]}`);
      t0 = performance.now();
      const b = await reconciler.tick(full);
      const steadyMs = performance.now() - t0;
      if (b.planned.length !== 0) throw new Error(`steady tick planned ${b.planned.length} commands (expected none)`);
      if (round === 0) continue; // connection set-up, JIT
      first.push(firstMs);
      steady.push(steadyMs);
      firstCommands = a.sent.length;
      steadyCommands = b.sent.length;
    }
    record(`reconcile on HAProxy, ${SIZE} servers, first tick`, first, "ms/tick", `${firstCommands} commands sent`);
    record(`reconcile on HAProxy, ${SIZE} servers, steady tick`, steady, "ms/tick", `${steadyCommands} commands sent (show servers state only)`);
    return await haproxy.command("show servers state be_parse");
  } finally {
    await haproxy.stop();
  }
}


const E2E_SIZE = 500;
const E2E_INTERVAL_MS = 1000;
const E2E_TARGET_MS = 2000;
const E2E_RUNS = 3;

function e2eTarget(n: number): StaticTarget {
  return { addr: `10.20.${n >> 8}.${n & 255}`, port: 80, name: `t-${n}` };
}

/** The wall-clock time of the first log line of `proc` containing `msg` (JSON or logfmt logs both carry an ISO time). */
function logTime(proc: Proc, msg: string): number | undefined {
  const line = proc.output().split("\n").find((l) => l.includes(msg));
  const iso = line?.match(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/)?.[0];
  return iso ? Date.parse(iso) : undefined;
}

/**
 * End to end, real processes: per run a fresh table and HAProxy, then
 * 1. cold start: hsdo --client waiting on an empty table, the static file
 *    listing 500 targets, hsdo --server started: time until HAProxy shows
 *    all 500 ready (from the server's spawn, and from its "became leader");
 * 2. churn on the full pool: the file loses 50 targets and gains 50 new
 *    ones: time until HAProxy shows the 50 leaving out of `ready` and the 50
 *    new ones ready in their slots. server.drain is 0 here: the freed slots
 *    wait one more tick (see docs/BENCHMARKS.md).
 */
async function benchEndToEnd(): Promise<void> {
  const dynalite = await startDynalite();
  const db = dynalite.client();
  const dir = mkdtempSync(join(tmpdir(), "hsdo-bench-e2e-"));
  const spawnToReady: number[] = [];
  const leaderToReady: number[] = [];
  const churnOut: number[] = [];
  const churnIn: number[] = [];
  const leaderToPublished: number[] = [];
  try {
    for (let run = 0; run < E2E_RUNS; run++) {
      const table = `bench-e2e-${run}`;
      await createTestTable(db, table);
      const haproxy = await startHaproxy({ body: templateBackend("be_e2e", "srv", E2E_SIZE) });
      const procs: Proc[] = [];
      try {
        const file = join(dir, `targets-${run}.yaml`);
        const common = {
          HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
          DYNAMODB_TABLE_NAME: table,
          AWS_ACCESS_KEY_ID: "test",
          AWS_SECRET_ACCESS_KEY: "test",
          AWS_REGION: "us-east-1",
          HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(E2E_SIZE),
          INTERVAL: `${E2E_INTERVAL_MS}ms`,
          EXPORTER_PORT: "0",
        };
        const cache = mkdtempSync(join(dir, "cache-"));
        const client = startHsdo(`client-${run}`, ["--client"], {
          ...common,
          CLIENT_HAPROXY_SOCKET_PATH: haproxy.socket,
          HSDO_CLIENT_BACKENDS: JSON.stringify([{ name: "be_e2e", prefix: "srv", port: 80, select: "all" }]),
          HSDO_CLIENT_CACHE_DIR: cache,
        });
        procs.push(client);
        await waitFor("hsdo --client started", () => {
          if (!client.running()) throw new Error(`client exited: ${client.output()}`);
          return client.output().includes("hsdo started");
        }, { timeoutMs: 60_000 });

        const states = async () => {
          const view = parseServersState(await haproxy.command("show servers state be_e2e")).get("be_e2e") ?? [];
          return new Map(view.map((srv) => [srv.addr, srv.state] as const));
        };
        let fleet = Array.from({ length: E2E_SIZE }, (_, i) => e2eTarget(i + 1));
        writeTargets(file, fleet);
        const spawnedAt = Date.now();
        const server = startHsdo(`server-${run}`, ["--server"], {
          ...common,
          SERVER_MODE: "static",
          HSDO_SERVER_STATIC_FILE: file,
          HSDO_SERVER_ID: `bench-${run}`,
          HSDO_SERVER_DRAIN: "0s",
          // No ramp: every target at full weight at once, so the pool is settled between the two measures.
          HSDO_SERVER_WEIGHT_MIN: "10",
          HSDO_SERVER_WEIGHT_MAX: "10",
        });
        procs.push(server);
        const diag = () => `--- server:\n${server.output().slice(-2000)}\n--- client:\n${client.output().slice(-2000)}`;
        const allReady = (view: Map<string | undefined, string>, targets: StaticTarget[]) => targets.every((t) => view.get(t.addr) === "ready");
        await waitFor("500 targets ready in HAProxy", async () => allReady(await states(), fleet), { timeoutMs: 60_000, intervalMs: 20 }).catch((e: Error) => {
          throw new Error(`${e.message}\n${diag()}`);
        });
        const readyAt = Date.now();
        const leaderAt = logTime(server, "became leader");
        const publishedAt = logTime(server, "slot changed");
        if (leaderAt !== undefined && publishedAt !== undefined) leaderToPublished.push(publishedAt - leaderAt);
        spawnToReady.push(readyAt - spawnedAt);
        if (leaderAt !== undefined) leaderToReady.push(readyAt - leaderAt);

        // Churn: 10% out, 10% in, on the full pool.
        const churn = E2E_SIZE / 10;
        const random = prng(run + 7);
        const leaving = new Set<string>();
        while (leaving.size < churn) leaving.add(fleet[Math.floor(random() * fleet.length)]!.addr);
        const gone = fleet.filter((t) => leaving.has(t.addr));
        const joining = Array.from({ length: churn }, (_, i) => e2eTarget(1000 + run * 100 + i));
        fleet = [...fleet.filter((t) => !leaving.has(t.addr)), ...joining];
        // Start on a tick boundary's worth of quiet: the pool settled (ramp done) before the change.
        await delay(E2E_INTERVAL_MS);
        const changedAt = Date.now();
        writeTargets(file, fleet);
        let outAt: number | undefined;
        await waitFor("churn shown in HAProxy", async () => {
          const view = await states();
          if (outAt === undefined && gone.every((t) => view.get(t.addr) !== "ready")) outAt = Date.now();
          return outAt !== undefined && allReady(view, joining);
        }, { timeoutMs: 60_000, intervalMs: 20 }).catch((e: Error) => {
          throw new Error(`${e.message}\n${diag()}`);
        });
        churnIn.push(Date.now() - changedAt);
        churnOut.push(outAt! - changedAt);
      } finally {
        for (const p of procs.reverse()) await p.stop();
        await haproxy.stop();
      }
    }
  } finally {
    db.destroy();
    await dynalite.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  const verdict = (m: number) => (m <= E2E_TARGET_MS ? `target <= ${E2E_TARGET_MS} ms: met` : `target <= ${E2E_TARGET_MS} ms: MISSED`);
  const m1 = record(`e2e cold start, ${E2E_SIZE} slots, from "became leader"`, leaderToReady, "ms", "");
  rows.at(-1)!.note = `${verdict(m1)}; all ${E2E_SIZE} ready in HAProxy, interval ${E2E_INTERVAL_MS} ms`;
  record(`  of which leader to published (server log)`, leaderToPublished, "ms", "lease taken to first publication written (stamp + 500 slot writes + head)");
  record(`e2e cold start, ${E2E_SIZE} slots, from server spawn`, spawnToReady, "ms", "includes node + tsx start-up and the first lease take");
  const m3 = record(`e2e churn 10% out, ${E2E_SIZE} slots: out of ready`, churnOut, "ms", "");
  rows.at(-1)!.note = `${verdict(m3)}; 50 gone targets no longer ready (drain) in HAProxy`;
  const m4 = record(`e2e churn 10% in, ${E2E_SIZE} slots: new ready`, churnIn, "ms", "");
  rows.at(-1)!.note = `${verdict(m4)}; 50 new targets ready; server.drain 0: waits for the gone ones' slots to be freed`;
}

function benchMemory(): void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed / 1024 / 1024;
  };
  const sim = churnSimulation(1000, 42);
  for (let i = 0; i < 100; i++) sim.tick();
  const at: number[] = [heap()];
  for (let block = 0; block < 4; block++) {
    for (let i = 0; i < 250; i++) sim.tick();
    at.push(heap());
  }
  rows.push({
    name: "heap used, 1000 ticks of assign on 1000 slots",
    median: at.at(-1)!,
    min: Math.min(...at),
    max: Math.max(...at),
    unit: "MiB",
    runs: at.length,
    note: `after 0/250/500/750/1000 ticks: ${at.map((m) => m.toFixed(2)).join(" / ")}; growth ${(at.at(-1)! - at[0]!).toFixed(2)} MiB`,
  });
}

/** The two ways to run hsdo: the release bundle (dist/package, built first) and the sources through tsx (a checkout). */
const BINS = {
  compiled: join(ROOT, "dist/package/bin/hsdo.js"),
  tsx: join(ROOT, "packages/cli/bin/hsdo.js"),
} as const;
/** Targets of issue 11: what an operator feels at start-up, and what a client costs beside HAProxy. */
const RSS_TARGET_MIB = 80;

/**
 * Times one hsdo run. Asynchronous on purpose: a spawnSync would block this
 * process's event loop, and with it the draining of HAProxy's stderr pipe
 * (HAProxy logs one line per server it brings up): HAProxy would then block
 * on a full pipe in the middle of the client's batch.
 */
async function timeRun(bin: string, args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [bin, ...args], { cwd: tmpdir(), env: cleanEnv(env), stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const status = await new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  clearTimeout(timer);
  const ms = performance.now() - t0;
  if (status !== 0) throw new Error(`hsdo ${args.join(" ")} exited ${status}: ${stderr}`);
  return ms;
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
function rssOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

async function benchStartup(): Promise<void> {
  const build = spawnSync(process.execPath, [join(ROOT, "scripts/build.mjs")], { cwd: ROOT, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr}`);

  const helpMs: Record<string, number> = {};
  for (const [kind, bin] of Object.entries(BINS)) {
    const samples: number[] = [];
    for (let i = 0; i < 8; i++) samples.push(await timeRun(bin, ["--help"], {}));
    samples.shift();
    helpMs[kind] = record(`hsdo --help, ${kind}`, samples, "ms", kind === "compiled" ? "dist/package/bin/hsdo.js: the bundle, no TypeScript at run time" : "packages/cli/bin/hsdo.js: tsx compiles the sources at load");
  }
  rows.push({ name: "  ratio tsx / compiled", median: helpMs.tsx! / helpMs.compiled!, min: NaN, max: NaN, unit: "×", runs: 0, note: "start-up saved by the build" });

  const SIZE = Number(process.env.BENCH_CLIENT_SLOTS ?? 500);
  const cleanups: (() => unknown)[] = [];
  const t = { after: (fn: () => unknown) => void cleanups.push(fn) };
  try {
    const { dynalite, db } = await dynaliteWithTable(t, "hsdo");
    const haproxy = await startHaproxy({ body: templateBackend("be_bench", "srv", SIZE) });
    cleanups.push(() => haproxy.stop());
    const pub = await startPublisher(t as never, db, { table: "hsdo", pool: "bench", size: SIZE });
    await pub.publish(snapshotOf(SIZE).slots);
    const env = (extra: Record<string, string> = {}) => ({
      HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_REGION: "us-east-1",
      DYNAMODB_TABLE_NAME: "hsdo",
      HSDO_POOL: "bench",
      HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
      CLIENT_HAPROXY_SOCKET_PATH: haproxy.socket,
      CLIENT_HAPROXY_BACKEND_NAME: "be_bench",
      CLIENT_HAPROXY_BACKEND_BASE_NAME: "srv",
      HSDO_CLIENT_CACHE_DIR: tmpdir(),
      EXPORTER_PORT: "0",
      ...extra,
    });
    const backend: BackendConfig = { name: "be_bench", prefix: "srv", pool: "bench", select: "all", allInFallback: false };
    const reset = new Reconciler({ api: new RuntimeApi({ socket: haproxy.socket }), backends: [backend], client: CLIENT });
    const allFree: Snapshot = { ...snapshotOf(SIZE), slots: snapshotOf(SIZE).slots.map((s) => ({ slot: s.slot, state: "free", weight: 0 })) };
    const firstMs: Record<string, number> = {};
    for (const [kind, bin] of Object.entries(BINS)) {
      const samples: number[] = [];
      for (let run = 0; run < 6; run++) {
        if (process.env.BENCH_RESET) await reset.tick(allFree); // every run starts from parked servers: its first tick applies the whole pool
        const ms = await timeRun(bin, ["--client", "--once"], env());
        if (run > 0) samples.push(ms);
      }
      firstMs[kind] = record(`hsdo --client --once, ${SIZE} slots, ${kind}`, samples, "ms", `process start to the first tick applied (table read, ~${Math.round(SIZE * 0.9 * 3)} commands), exit`);
    }
    rows.push({ name: "  ratio tsx / compiled", median: firstMs.tsx! / firstMs.compiled!, min: NaN, max: NaN, unit: "×", runs: 0, note: "" });

    for (const [kind, bin] of Object.entries(BINS)) {
      await reset.tick(allFree);
      const port = await freePort();
      const proc = startProc(`bench-client-${kind}`, process.execPath, [bin, "--client"], { cwd: tmpdir(), env: cleanEnv(env({ EXPORTER_PORT: String(port), HSDO_HTTP_HOST: "127.0.0.1", INTERVAL: "250ms" })) });
      try {
        const ticks = async () => metricValue(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), "hsdo_tick_duration_seconds_count", { role: "client" });
        await waitFor(`${kind} client ticks 40 times`, async () => (await ticks()) >= 40, { timeoutMs: 60_000, intervalMs: 200 });
        const m = rssOf(proc.pid);
        const heap = metricValue(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), "nodejs_heap_size_used_bytes") / 1024 / 1024;
        rows.push({
          name: `client RSS, ${SIZE} slots, after 40 ticks, ${kind}`,
          median: m.rss,
          min: NaN,
          max: NaN,
          unit: "MiB",
          runs: 1,
          note: `peak ${m.peak.toFixed(1)} MiB, JS heap used ${heap.toFixed(1)} MiB; target < ${RSS_TARGET_MIB} MiB: ${m.rss < RSS_TARGET_MIB ? "met" : "MISSED"}`,
        });
      } finally {
        await proc.stop("SIGTERM");
      }
    }
  } finally {
    for (const fn of cleanups.reverse()) await fn();
  }
}

function fmt(n: number): string {
  if (Number.isNaN(n)) return "";
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function printTable(): void {
  const header = ["benchmark", "median", "unit", "min..max", "runs", "note"];
  const body = rows.map((r) => [r.name, fmt(r.median), r.unit, Number.isNaN(r.min) ? "" : `${fmt(r.min)}..${fmt(r.max)}`, r.runs ? String(r.runs) : "", r.note]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 1 || i === 3 || i === 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(`hsdo bench: node ${process.versions.node}, ${ensureHaproxy()}`);
  // --e2e-only / --startup: one part alone; --no-e2e / --no-startup: all but it.
  const only = ["--e2e-only", "--startup"].find((f) => process.argv.includes(f));
  if (!only) {
    benchAssign();
    benchPlan();
    const answer = await benchHaproxy();
    benchParse(answer, 5000);
    benchMemory();
  }
  if ((!only || only === "--e2e-only") && !process.argv.includes("--no-e2e")) await benchEndToEnd();
  if ((!only || only === "--startup") && !process.argv.includes("--no-startup")) await benchStartup();
  console.log("");
  printTable();
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s; medians of repeated runs, first run of each dropped as warm-up)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
