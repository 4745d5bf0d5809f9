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
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { assignSlots, type AssignConfig, type BackendConfig, type Slot, type Snapshot, type Target } from "@hsdo/core";
import { Reconciler, RuntimeApi, desiredServers, parseServersState, plan, type ActualServer, type ClientIdentity, type SetServer } from "@hsdo/client";
import { startHaproxy, templateBackend } from "@hsdo/testkit";
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

/** A small deterministic PRNG (mulberry32): every run churns the same way. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
  benchAssign();
  benchPlan();
  const answer = await benchHaproxy();
  benchParse(answer, 5000);
  benchMemory();
  console.log("");
  printTable();
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s; medians of repeated runs, first run of each dropped as warm-up)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
