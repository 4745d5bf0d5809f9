// `npm run demo`: hsdo on one machine, no AWS, no Docker. Embedded DynamoDB,
// a real HAProxy hashing URIs consistently over six small HTTP origins on
// loopback, and `hsdo --server --client` in one process with a static
// source. A short story plays: origins join and ramp, one drains and leaves,
// a newcomer takes the freed slot; the same URI keeps its origin while
// others come and go. `--keep` leaves everything running for exploring.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";
import { createDynamoClient, SlotReader } from "@hsdo/store";
import { RuntimeApi, parseServersState, type ActualServer } from "@hsdo/client";
import type { Snapshot } from "@hsdo/core";
import { formatStatus } from "@hsdo/cli/status-format";
import { loadConfig } from "@hsdo/cli/load-config";
import { ensureHaproxy, haproxyBinary } from "./haproxy-preflight.mjs";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const KEEP = process.argv.includes("--keep");
// The demo's fixed settings live in conf/demo.yaml; the story reads them from there.
const DEMO = loadConfig({ config: "conf/demo.yaml" }, {}, ROOT).config;
const SIZE = DEMO.size;
const MAX_WEIGHT = DEMO.server.weight.max;
const URIS = Array.from({ length: 24 }, (_, i) => `/video/${i + 1}.mp4`);
const BOLD = process.stdout.isTTY ? (s: string) => `\x1b[1m${s}\x1b[0m` : (s: string) => s;

const children: ChildProcess[] = [];
const origins: Server[] = [];
let dir = "";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

async function waitUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let dots = 0;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) {
        if (dots) process.stdout.write("\n");
        return v;
      }
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
    if (++dots % 4 === 0) process.stdout.write(dots === 4 ? `  waiting for ${what} .` : ".");
    await delay(250);
  }
}

interface Origin {
  name: string;
  port: number;
}

async function startOrigin(name: string): Promise<Origin> {
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "x-origin": name }).end(`${name} served ${req.url}\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  origins.push(server);
  const a = server.address();
  return { name, port: typeof a === "object" && a ? a.port : 0 };
}

function writeTargets(file: string, list: Origin[], draining: string[] = []): void {
  const lines = list.map(
    (o) => `  - { name: ${o.name}, addr: 127.0.0.1, port: ${o.port}, group: demo, az: local${draining.includes(o.name) ? ", state: drain" : ""} }`,
  );
  writeFileSync(`${file}.tmp`, `targets:\n${lines.join("\n")}\n`);
  renameSync(`${file}.tmp`, file);
}

async function main(): Promise<void> {
  console.log(BOLD("hsdo demo"));
  console.log(`  ${ensureHaproxy((m) => console.log(`  ${m}`))}`);
  dir = mkdtempSync(join(tmpdir(), "hsdo-demo-"));
  const socket = join(dir, "haproxy.sock");
  const [frontPort, dynamoPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const names = ["origin-a", "origin-b", "origin-c", "origin-d", "origin-e", "origin-f"];
  const all = await Promise.all(names.map(startOrigin));
  const byName = new Map(all.map((o) => [o.name, o]));
  const pick = (...n: string[]) => n.map((x) => byName.get(x)!);

  const targets = join(dir, "targets.yaml");
  writeTargets(targets, []);
  writeFileSync(
    join(dir, "haproxy.cfg"),
    [
      "global",
      `    stats socket ${socket} mode 600 level admin`,
      "defaults",
      "    mode http",
      "    timeout connect 1s",
      "    timeout client 10s",
      "    timeout server 10s",
      "frontend www",
      `    bind 127.0.0.1:${frontPort}`,
      "    default_backend origins",
      "backend origins",
      "    # The server name and id of each slot build the hash ring: stable slots keep URIs on their origin.",
      "    balance uri",
      "    hash-type consistent",
      `    server-template origin 1-${SIZE} 127.0.0.2:80 disabled`,
      "",
    ].join("\n"),
  );
  const haproxy = spawn(haproxyBinary(), ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: ["ignore", "ignore", "pipe"] });
  children.push(haproxy);
  const api = new RuntimeApi({ socket, timeoutMs: 2000 });
  await waitUntil("HAProxy's Runtime API", async () => ((await api.run("show info")).text.includes("HAProxy") ? true : undefined));
  console.log(`  HAProxy on http://127.0.0.1:${frontPort} (balance uri, hash-type consistent, ${SIZE} template servers)`);

  const config = join(ROOT, "conf/demo.yaml");
  const runtime = {
    "dynamodb.embeddedPort": dynamoPort,
    "http.port": metricsPort,
    "server.static.file": targets,
    "client.socket": socket,
    "client.cacheDir": dir,
  };
  const sets = Object.entries(runtime).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
  const hsdo = spawn(process.execPath, [join(ROOT, "packages/cli/bin/hsdo.js"), "--server", "--client", "--config", config, ...sets], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  });
  children.push(hsdo);
  let hsdoLog = "";
  hsdo.stderr?.on("data", (d: Buffer) => (hsdoLog += d.toString()));
  hsdo.on("exit", (code) => {
    if (code && code !== 0 && !stopping) {
      console.error(`hsdo exited with ${code}:\n${hsdoLog.split("\n").slice(-15).join("\n")}`);
      void cleanup(1);
    }
  });
  console.log(`  hsdo --server --client started (embedded DynamoDB on 127.0.0.1:${dynamoPort}, metrics on :${metricsPort})`);

  const db = createDynamoClient({ endpoint: `http://127.0.0.1:${dynamoPort}`, region: "us-east-1", credentials: { accessKeyId: "demo", secretAccessKey: "demo" } });
  const reader = new SlotReader({ client: db, table: "hsdo", pool: "demo" });
  const haproxyState = async (): Promise<ActualServer[]> =>
    parseServersState((await api.run("show servers state origins")).text).get("origins") ?? [];
  const ask = async (): Promise<Map<string, string>> => {
    const seen = new Map<string, string>();
    for (const uri of URIS) {
      const res = await fetch(`http://127.0.0.1:${frontPort}${uri}`);
      seen.set(uri, (res.headers.get("x-origin") ?? `HTTP ${res.status}`).replace("origin-", ""));
      await res.arrayBuffer();
    }
    return seen;
  };
  const short = (s: ActualServer) => all.find((o) => o.port === s.port)?.name.replace("origin-", "") ?? `${s.addr}:${s.port}`;

  const show = async (title: string) => {
    const snap = await reader.snapshot();
    console.log(`\n${BOLD(`── ${title}`)}`);
    if (snap) console.log(indent(formatStatus(snap, Date.now())));
    const servers = await haproxyState();
    const held = servers.filter((s) => s.state !== "maint");
    console.log(`  HAProxy holds: ${held.map((s) => `${s.name}=${short(s)} w${s.uweight}${s.state === "drain" ? " (drain)" : ""}`).join(", ") || "(none)"}`);
  };

  /** Which origin answers each URI, compared with the last steady state: moves are named. */
  let steady: Map<string, string> | undefined;
  const compare = async (expectMovesTo: string[], left: string[] = []) => {
    const now = await ask();
    console.log(`  ${URIS.length} URIs: ${URIS.map((u) => now.get(u)).join("")}   (letter = origin answering /video/1..${URIS.length}.mp4)`);
    if (steady) {
      const moved = URIS.filter((u) => steady!.get(u) !== now.get(u));
      const explained = moved.filter((u) => expectMovesTo.includes(now.get(u)!) || left.includes(steady!.get(u)!));
      const kept = URIS.length - moved.length;
      console.log(
        `  kept their origin: ${kept}/${URIS.length}; moved: ${moved.length}` +
          (moved.length
            ? ` (${moved.map((u) => `${u.replace("/video/", "").replace(".mp4", "")}:${steady!.get(u)}→${now.get(u)}`).join(" ")})`
            : ""),
      );
      const why = [expectMovesTo.length ? `to ${expectMovesTo.join(", ")}` : "", left.length ? `away from ${left.join(", ")}` : ""].filter(Boolean).join(" or ");
      console.log(
        explained.length === moved.length
          ? `  every move went ${why || "nowhere"}: no URI changed between two origins that both stayed`
          : `  ${moved.length - explained.length} URI(s) moved between origins that both stayed (weights differ from the last steady state)`,
      );
    }
    steady = now;
  };

  const applied = (want: (snap: Snapshot, servers: ActualServer[]) => boolean, what: string) =>
    waitUntil(what, async () => {
      const snap = await reader.snapshot();
      if (!snap) return undefined;
      return want(snap, await haproxyState()) ? true : undefined;
    });
  const readyIn = (servers: ActualServer[]) => servers.filter((s) => s.state === "ready").length;
  const rampedIn = (servers: ActualServer[], n: number) => servers.filter((s) => s.state === "ready" && s.uweight === MAX_WEIGHT).length === n;
  const slot2 = (servers: ActualServer[]) => servers.find((x) => x.name === "origin2");

  // 1. Three origins join.
  writeTargets(targets, pick("origin-a", "origin-b", "origin-c"));
  await applied((_, s) => readyIn(s) === 3, "three origins in HAProxy");
  const w = DEMO.server.weight;
  await show(`1. origin-a, -b and -c join slots 1-3 at weight ${w.min}; they gain ${w.step} every ${w.intervalMs / 1000} s up to ${w.max}`);
  await applied((_, s) => rampedIn(s, 3), `the ramp to weight ${w.max}`);
  await show("   ...ramped to full weight: the steady state every HAProxy node shares");
  await compare([]);

  // 2. Two more join.
  writeTargets(targets, pick("origin-a", "origin-b", "origin-c", "origin-d", "origin-e"));
  await applied((_, s) => readyIn(s) === 5, "origin-d and -e in HAProxy");
  await show("2. origin-d and -e join the lowest free slots, 4 and 5, and ramp (their cache warms gradually)");
  await applied((_, s) => rampedIn(s, 5), "their ramp");
  await compare(["d", "e"]);

  // 3. One leaves: marked `state: drain` in the file, it drains, then is freed; then its entry goes.
  // (An entry simply deleted is gone, not leaving: its slot would be freed at once, with no drain.)
  const slot2Before = URIS.filter((u) => steady?.get(u) === "b");
  writeTargets(targets, pick("origin-a", "origin-b", "origin-c", "origin-d", "origin-e"), ["origin-b"]);
  await applied((snap, s) => snap.slots[1]!.state === "drain" && slot2(s)?.state === "drain", "origin-b to drain");
  await show("3. origin-b leaves (state: drain): slot 2 drains (no new sessions, running ones finish); no other slot moves");
  await applied((snap, s) => snap.slots[1]!.state === "free" && slot2(s)?.state === "maint", `the end of the drain (${DEMO.server.drainMs / 1000} s)`);
  writeTargets(targets, pick("origin-a", "origin-c", "origin-d", "origin-e"));
  await show("   ...drained: slot 2 is free (remembering origin-b) and parked in maint; origin-b's entry is removed");
  await compare([], ["b"]);

  // 4. A newcomer takes the freed slot.
  writeTargets(targets, pick("origin-a", "origin-c", "origin-d", "origin-e", "origin-f"));
  await applied((snap, s) => snap.slots[1]!.name === "origin-f" && slot2(s)?.state === "ready", "origin-f in slot 2");
  await show("4. origin-f joins and takes the lowest free slot: 2");
  await applied((_, s) => rampedIn(s, 5), "its ramp");
  await compare(["f"]);
  const slot2Now = URIS.filter((u) => steady?.get(u) === "f");
  if (slot2Now.join() === slot2Before.join()) {
    console.log(`  origin-f now serves exactly the URIs origin-b served in slot 2 (${slot2Now.length}): the ring position belongs to the slot.`);
  }
  console.log("\n  Every HAProxy node builds the same ring from the same slots, so a URI lands on the same origin whichever node serves it.");

  if (KEEP) {
    console.log(`\n${BOLD("Left running (Ctrl-C to stop and clean up):")}`);
    console.log(`  curl http://127.0.0.1:${frontPort}/video/1.mp4`);
    console.log(`  echo "show servers state origins" | socat stdio ${socket}`);
    console.log(`  npx hsdo status --pool demo --set dynamodb.endpoint=http://127.0.0.1:${dynamoPort}   (with AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1)`);
    console.log(`  curl http://127.0.0.1:${metricsPort}/metrics`);
    console.log(`  edit ${targets} to add or remove origins (ports: ${all.map((o) => `${o.name}=${o.port}`).join(" ")})`);
    exploring = true;
    await interrupted;
  }
  db.destroy();
  await cleanup(0);
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

let stopping = false;
async function cleanup(code: number): Promise<never> {
  stopping = true;
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGTERM");
      const done = new Promise((r) => c.once("exit", r));
      const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(timer);
    }
  }
  for (const o of origins) o.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(code === 0 ? "\ndemo done: every process it started is stopped." : "\ndemo failed; every process it started is stopped.");
  process.exit(code);
}

// Ctrl-C during the story stops everything; with --keep it ends the exploring.
let exploring = false;
let endExploring: () => void = () => {};
const interrupted = new Promise<void>((resolve) => (endExploring = resolve));
const onInterrupt = () => (exploring ? endExploring() : void cleanup(130));
process.once("SIGINT", onInterrupt);
process.once("SIGTERM", onInterrupt);
main().catch(async (err: unknown) => {
  console.error(`\n${err instanceof Error ? err.message : String(err)}`);
  await cleanup(1);
});
