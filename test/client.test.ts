// `hsdo --client` as a process: real HAProxy, dynalite in its own process,
// snapshots published by the real store (LeaseKeeper + FencedWriter in this
// process, as a leader would), and the client run through the real command.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeTableCommand, PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { parseServersState, type ActualServer } from "@hsdo/client";
import type { Head, Slot } from "@hsdo/core";
import {
  dynaliteWithTable,
  type DynaliteHandle,
  startHaproxy,
  templateBackend,
  type HaproxyHandle,
  runHsdo,
  startHsdo,
  freePort,
  metricValue,
  type Proc,
  waitFor,
  startPublisher as startPublisherOf,
  type Publisher,
} from "@hsdo/testkit";
import { haproxyVersion } from "../scripts/haproxy-preflight.mjs";

const TABLE = "hsdo";
const POOL = "default";
const SIZE = 4;
const BACKEND = "be";
const PREFIX = "srv";
const PORT = 8080;
const INTERVAL_MS = 300;
const MAX_AGE_MS = 3000;

function startPublisher(t: TestContext, db: DynamoDBClient): Promise<Publisher> {
  return startPublisherOf(t, db, { table: TABLE, pool: POOL, size: SIZE });
}

function ready(slot: number, n: number, weight = 5): Slot {
  return { slot, state: "ready", addr: `10.0.0.${n}`, port: 80, name: `t${n}`, group: "g", az: "az1", weight, since: 1_700_000_000_000 };
}

interface Bed {
  dynalite: DynaliteHandle;
  db: DynamoDBClient;
  haproxy: HaproxyHandle;
  cache: string;
}

async function testbed(t: TestContext, body = templateBackend(BACKEND, PREFIX, SIZE)): Promise<Bed> {
  const { dynalite, db } = await dynaliteWithTable(t, TABLE);
  const haproxy = await startHaproxy({ body });
  t.after(() => haproxy.stop());
  const cache = mkdtempSync(join(tmpdir(), "hsdo-client-cache-"));
  t.after(() => rmSync(cache, { recursive: true, force: true }));
  return { dynalite, db, haproxy, cache };
}

/** The client's environment, as an HSDO deployment sets it, plus hsdo's own knobs. */
function clientEnv(bed: Bed, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HSDO_DYNAMODB_ENDPOINT: bed.dynalite.endpoint,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
    DYNAMODB_TABLE_NAME: TABLE,
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
    CLIENT_HAPROXY_SOCKET_PATH: bed.haproxy.socket,
    CLIENT_HAPROXY_BACKEND_NAME: BACKEND,
    CLIENT_HAPROXY_BACKEND_BASE_NAME: PREFIX,
    CLIENT_HAPROXY_BACKEND_SERVER_PORT: String(PORT),
    INTERVAL: `${INTERVAL_MS}ms`,
    HSDO_CLIENT_CACHE_DIR: bed.cache,
    HSDO_CLIENT_MAX_SNAPSHOT_AGE: `${MAX_AGE_MS}ms`,
    EXPORTER_PORT: "0",
    ...extra,
  };
}

interface RunningClient {
  proc: Proc;
  get(path: string): Promise<{ status: number; body: string }>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  ticks(): Promise<number>;
}

async function startClient(t: TestContext, bed: Bed, name: string, extra: Record<string, string> = {}): Promise<RunningClient> {
  const port = await freePort();
  const proc = startHsdo(name, ["--client"], clientEnv(bed, { EXPORTER_PORT: String(port), HSDO_HTTP_HOST: "127.0.0.1", ...extra }));
  t.after(() => proc.stop("SIGKILL"));
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text() };
  };
  const metric = async (metricName: string, labels: Record<string, string> = {}) => metricValue((await get("/metrics")).body, metricName, labels);
  await waitFor(`${name} answers on /healthz`, async () => {
    if (!proc.running()) throw new Error(`${name} exited: ${proc.output()}`);
    return (await get("/healthz")).status === 200;
  });
  return { proc, get, metric, ticks: () => metric("hsdo_tick_duration_seconds_count", { role: "client" }) };
}

async function servers(haproxy: HaproxyHandle): Promise<ActualServer[]> {
  return parseServersState(await haproxy.command(`show servers state ${BACKEND}`)).get(BACKEND) ?? [];
}

/** name -> "addr:port state weight" of every server, the part of HAProxy's state hsdo drives. */
async function view(haproxy: HaproxyHandle): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of await servers(haproxy)) out[s.name] = `${s.addr}:${s.port} ${s.state} w${s.uweight} admin${s.adminState} op${s.opState}`;
  return out;
}

/** The live servers only (not in maint), as addr:port/weight. */
async function live(haproxy: HaproxyHandle): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of await servers(haproxy)) if (s.state !== "maint") out[s.name] = `${s.addr}:${s.port}/${s.uweight}`;
  return out;
}

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at .+[(:]\d+/m, `no stack trace expected:\n${text}`);
  assert.doesNotMatch(text, /unexpected error/, text);
}

/** The client's JSON log events. */
function events(proc: Proc): Record<string, unknown>[] {
  return proc
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test("start-up checks: a missing backend, a too small server-template, a path that is not a socket exit 2 with what to fix; a missing socket fails --once with exit 1", async (t) => {
  // A published pool, so nothing but HAProxy's side is wrong.
  const bed = await testbed(t, [templateBackend(BACKEND, PREFIX, SIZE), templateBackend("small", "small", 4)].join("\n"));
  const pub = await startPublisher(t, bed.db);
  await pub.publish([ready(1, 1)]);
  const before = await view(bed.haproxy);

  const socket = join(bed.cache, "no-such-dir", "admin.sock");
  const notSocket = join(bed.cache, "a-file");
  writeFileSync(notSocket, "");
  const [missing, small, wrong, file] = await Promise.all([
    runHsdo(["--client", "--once"], clientEnv(bed, { CLIENT_HAPROXY_BACKEND_NAME: "nope", CLIENT_HAPROXY_BACKEND_BASE_NAME: "nope" })),
    runHsdo(
      ["--client", "--once"],
      clientEnv(bed, { CLIENT_HAPROXY_BACKEND_NAME: "small", CLIENT_HAPROXY_BACKEND_BASE_NAME: "small", HAPROXY_BACKEND_SERVERS_LIST_SIZE: "10" }),
    ),
    runHsdo(["--client", "--once"], clientEnv(bed, { CLIENT_HAPROXY_SOCKET_PATH: socket })),
    runHsdo(["--client", "--once"], clientEnv(bed, { CLIENT_HAPROXY_SOCKET_PATH: notSocket })),
  ]);

  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /backend nope does not exist in HAProxy/);
  assert.match(missing.stderr, /backend nope\n\s+server-template nope 1-4 hsdo-parked\.invalid:1 init-addr last,127\.0\.0\.2 disabled check/);
  assertNoStack(missing.stderr);

  assert.equal(small.code, 2, small.stderr);
  assert.match(small.stderr, /backend small has 4 of the 10 servers small1\.\.small10 \(missing small5\.\.small10\)/);
  assert.match(small.stderr, /server-template small 1-10 hsdo-parked\.invalid:1 init-addr last,127\.0\.0\.2 disabled check/);
  assertNoStack(small.stderr);

  // No socket yet is HAProxy not started (a long-running client waits for it): a runtime failure, not the operator's.
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.ok(wrong.stderr.includes(socket), `the message names the socket path:\n${wrong.stderr}`);
  assert.match(wrong.stderr, /client\.socket/);
  assert.match(wrong.stderr, /is not answering: socket .* does not exist/);
  assertNoStack(wrong.stderr);

  assert.equal(file.code, 2, file.stderr);
  assert.match(file.stderr, new RegExp(`client\\.socket\\) cannot be used: ${notSocket.replace(/[.]/g, "\\.")} is a regular file, not a socket`));
  assertNoStack(file.stderr);

  assert.deepEqual(await view(bed.haproxy), before, "a client that failed its checks sent nothing");
});

test("a long-running client started before HAProxy's socket exists waits, logging every few seconds, then applies once it appears", async (t) => {
  const bed = await testbed(t);
  const pub = await startPublisher(t, bed.db);
  await pub.publish([ready(1, 1)]);
  const dir = mkdtempSync(join(tmpdir(), "hsdo-late-socket-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const late = join(dir, "admin.sock");
  const client = await startClient(t, bed, "client", { CLIENT_HAPROXY_SOCKET_PATH: late });
  const fail = () => `client:\n${client.proc.output().slice(-4000)}`;
  await waitFor("a waiting line", () => events(client.proc).some((e) => e.msg === "waiting for HAProxy's Runtime API"), { timeoutMs: 10_000 }).catch((e: Error) =>
    assert.fail(`${e.message}\n${fail()}`),
  );
  const first = events(client.proc).find((e) => e.msg === "waiting for HAProxy's Runtime API")!;
  assert.equal(first.socket, late);
  assert.equal(first.level, "warn");
  assert.match(String(first.error), /does not exist/);
  assert.ok(client.proc.running(), "still running");
  assert.equal((await client.get("/readyz")).status, 503, "not ready while HAProxy is away");
  // Nothing has happened yet, and every labelled counter is there at 0 for its known labels.
  const text = (await client.get("/metrics")).body;
  for (const line of [
    `hsdo_runtime_api_commands_total{backend="${BACKEND}",outcome="ok"} 0`,
    `hsdo_runtime_api_commands_total{backend="${BACKEND}",outcome="failed"} 0`,
    `hsdo_drift_corrections_total{backend="${BACKEND}"} 0`,
    'hsdo_tick_errors_total{role="client"} 0',
    'hsdo_runtime_api_errors_total{kind="exchange"} 0',
    "hsdo_haproxy_new_process_total 0",
  ]) {
    assert.ok(text.split("\n").includes(line), `${line} in /metrics:\n${text}`);
  }
  // HAProxy "starts": its socket appears at the configured path.
  symlinkSync(bed.haproxy.socket, late);
  await waitFor("the snapshot applied", async () => (await live(bed.haproxy))[`${PREFIX}1`] === `10.0.0.1:${PORT}/5`, { timeoutMs: 15_000 }).catch((e: Error) =>
    assert.fail(`${e.message}\n${fail()}`),
  );
  assert.ok(events(client.proc).some((e) => e.msg === "HAProxy's Runtime API answers"), fail());
});

test("fail static: dynalite stops, HAProxy keeps its state, /readyz stays 200 and warns after the age limit (strict turns 503); updates resume when it is back", async (t) => {
  const bed = await testbed(t);
  const pub = await startPublisher(t, bed.db);
  await pub.publish([ready(1, 1), ready(2, 2)]);
  const client = await startClient(t, bed, "client");
  const fail = () => `client:\n${client.proc.output().slice(-4000)}`;
  await waitFor("the snapshot applied", async () => {
    const m = await live(bed.haproxy);
    return m[`${PREFIX}1`] === `10.0.0.1:${PORT}/5` && m[`${PREFIX}2`] === `10.0.0.2:${PORT}/5` && Object.keys(m).length === 2;
  }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  await waitFor("/readyz 200", async () => (await client.get("/readyz")).status === 200).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  const applied = await view(bed.haproxy);
  const commandsBefore = await client.metric("hsdo_runtime_api_commands_total");

  await bed.dynalite.stop();
  // The first failed read: not yet stale, so still ready (a blip of DynamoDB must not take every HAProxy node out).
  await waitFor("the client sees the table unreadable", async () => (await client.metric("hsdo_dynamodb_requests_total", { operation: "head.read", outcome: "error" })) >= 1);
  const early = await client.get("/readyz");
  const ageAfter = await client.metric("hsdo_snapshot_age_seconds", { pool: POOL });
  // The age only grows while dynalite is down: read after /readyz, it bounds the age /readyz judged.
  assert.ok(early.status === 200 || ageAfter * 1000 > MAX_AGE_MS, `ready until the age limit passes (age ${ageAfter}s): ${early.body}`);

  const ticksAtStop = await client.ticks();
  const drift: string[] = [];
  await waitFor(
    "six client ticks without the table",
    async () => {
      const now = await view(bed.haproxy);
      if (JSON.stringify(now) !== JSON.stringify(applied)) drift.push(JSON.stringify(now));
      return (await client.ticks()) >= ticksAtStop + 6;
    },
    { intervalMs: 100 },
  );
  assert.deepEqual(drift, [], "HAProxy kept exactly the last applied state");
  assert.deepEqual(await view(bed.haproxy), applied);
  assert.equal(await client.metric("hsdo_runtime_api_commands_total"), commandsBefore, "no command sent during the outage");

  // Past the age limit: the strict readiness drops and says why; the plain one stays 200 (HAProxy holds a good state) and warns.
  const stale = await waitFor("/readyz?strict 503 once the last read is older than the limit", async () => {
    const r = await client.get("/readyz?strict");
    return r.status === 503 ? r : undefined;
  });
  const reasons = (JSON.parse(stale.body) as { reasons: string[] }).reasons;
  assert.ok(
    reasons.some((r) => /pool default: table last read \d+s ago \(limit 3s\)/.test(r) && r.includes("unreadable")),
    `a reason names the table, its age and the error: ${stale.body}`,
  );
  const plain = await client.get("/readyz");
  assert.equal(plain.status, 200, `a DynamoDB outage never makes a serving node unready: ${plain.body}`);
  const warnings = (JSON.parse(plain.body) as { warnings: string[] }).warnings;
  assert.ok(warnings.some((w) => /pool default: table last read \d+s ago \(limit 3s\)/.test(w)), `the staleness is a warning: ${plain.body}`);
  assert.equal((await client.get("/healthz")).status, 200, "alive all along");
  assert.ok((await client.metric("hsdo_snapshot_age_seconds", { pool: POOL })) >= MAX_AGE_MS / 1000);
  assert.deepEqual(await view(bed.haproxy), applied);

  await bed.dynalite.start();
  // The test's own client has one attempt per request: let it find the new dynalite before publishing.
  await waitFor("dynalite answers again", async () => Boolean(await bed.db.send(new DescribeTableCommand({ TableName: TABLE }))));
  await pub.publish([ready(2, 2, 7), ready(3, 3)]);
  await waitFor("the change reaches HAProxy", async () => {
    const m = await live(bed.haproxy);
    return m[`${PREFIX}2`] === `10.0.0.2:${PORT}/7` && m[`${PREFIX}3`] === `10.0.0.3:${PORT}/5`;
  }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  assert.deepEqual(await live(bed.haproxy), {
    [`${PREFIX}1`]: `10.0.0.1:${PORT}/5`,
    [`${PREFIX}2`]: `10.0.0.2:${PORT}/7`,
    [`${PREFIX}3`]: `10.0.0.3:${PORT}/5`,
  });
  await waitFor("/readyz 200 again", async () => (await client.get("/readyz")).status === 200).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
});

test("a client restarted while dynalite is down restores a restarted HAProxy from its cache", async (t) => {
  const bed = await testbed(t);
  const pub = await startPublisher(t, bed.db);
  const head = await pub.publish([ready(1, 1), ready(3, 3, 4)]);
  const first = await startClient(t, bed, "client-1");
  const expected = { [`${PREFIX}1`]: `10.0.0.1:${PORT}/5`, [`${PREFIX}3`]: `10.0.0.3:${PORT}/4` };
  await waitFor("the snapshot applied", async () => JSON.stringify(await live(bed.haproxy)) === JSON.stringify(expected)).catch((e: Error) =>
    assert.fail(`${e.message}\n${first.proc.output().slice(-3000)}`),
  );
  const cacheFileOf = () => readdirSync(bed.cache).find((f) => f.startsWith(`hsdo-snapshot-${POOL}-`) && f.endsWith(".json"));
  await waitFor("the cache file written", () => cacheFileOf() !== undefined);
  const file = join(bed.cache, cacheFileOf() as string);
  const cached = JSON.parse(readFileSync(file, "utf8")) as { snapshot: { head: Head } };
  assert.equal(cached.snapshot.head.generation, head.generation);

  await first.proc.stop("SIGTERM");
  await bed.dynalite.stop();
  await bed.haproxy.restart();
  const template = await servers(bed.haproxy);
  assert.equal(template.length, SIZE);
  for (const s of template) {
    assert.equal(s.addr, "127.0.0.2", `${s.name} is back at the template's placeholder`);
    assert.ok(s.adminFlags.includes("CMAINT"), `${s.name} is back to disabled`);
  }
  assert.deepEqual(await live(bed.haproxy), {}, "HAProxy serves nothing after its restart");

  const second = await startClient(t, bed, "client-2");
  await waitFor("HAProxy restored from the cache", async () => JSON.stringify(await live(bed.haproxy)) === JSON.stringify(expected)).catch((e: Error) =>
    assert.fail(`${e.message}\n${second.proc.output().slice(-3000)}`),
  );
  assert.equal(bed.dynalite.proc.running(), false, "dynalite is still down");
  const loaded = events(second.proc).find((e) => e.msg === "loaded the last good snapshot from the cache");
  assert.equal(loaded?.generation, head.generation, "the client says it started from the cache");
  const byName = new Map((await servers(bed.haproxy)).map((s) => [s.name, s]));
  assert.equal(byName.get(`${PREFIX}2`)?.state, "maint");
  assert.equal(byName.get(`${PREFIX}4`)?.state, "maint");
  const readyz = await second.get("/readyz");
  assert.equal(readyz.status, 200, "HAProxy holds a good state: a DynamoDB outage must not make the node unready");
  assert.match(readyz.body, /"warnings":\[[^\]]*pool default: table not read yet/);
  const strict = await second.get("/readyz?strict");
  assert.equal(strict.status, 503, "the strict readiness counts a snapshot never read from the table");
  assert.match(strict.body, /pool default: table not read yet/);
});

test("--dry-run prints the commands and sends none; --once applies; a second dry run has nothing to send", async (t) => {
  const bed = await testbed(t);
  const pub = await startPublisher(t, bed.db);
  await pub.publish([ready(1, 1), ready(2, 2, 3)]);
  const before = await view(bed.haproxy);

  const dry = await runHsdo(["--client", "--once", "--dry-run"], clientEnv(bed));
  assert.equal(dry.code, 0, dry.stderr);
  const header = /dry run: would send (\d+) command\(s\):/.exec(dry.stdout);
  assert.ok(header, dry.stdout);
  const lines = dry.stdout
    .split("\n")
    .filter((l) => l.startsWith("  "))
    .map((l) => l.trim());
  assert.equal(lines.length, Number(header[1]));
  for (const expected of [
    `set server ${BACKEND}/${PREFIX}1 addr 10.0.0.1 port ${PORT}`,
    `set server ${BACKEND}/${PREFIX}1 weight 5`,
    `set server ${BACKEND}/${PREFIX}1 state ready`,
    `set server ${BACKEND}/${PREFIX}2 addr 10.0.0.2 port ${PORT}`,
    `set server ${BACKEND}/${PREFIX}2 weight 3`,
    `set server ${BACKEND}/${PREFIX}2 state ready`,
  ]) {
    assert.ok(lines.includes(expected), `dry run shows ${expected}:\n${dry.stdout}`);
  }
  for (const l of lines) assert.match(l, /^set server be\/srv[1-4] /);
  assert.deepEqual(await view(bed.haproxy), before, "the dry run sent nothing");
  assert.deepEqual(readdirSync(bed.cache), [], "a dry run writes no cache");

  const once = await runHsdo(["--client", "--once"], clientEnv(bed));
  assert.equal(once.code, 0, once.stderr);
  assert.deepEqual(await live(bed.haproxy), { [`${PREFIX}1`]: `10.0.0.1:${PORT}/5`, [`${PREFIX}2`]: `10.0.0.2:${PORT}/3` });

  const again = await runHsdo(["--client", "--once", "--dry-run"], clientEnv(bed));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /dry run: HAProxy matches, nothing to send/);
  assert.doesNotMatch(again.stdout, /set server/);
});

test("no snapshot yet: --once fails and says so, HAProxy untouched; a running client is not ready and says why", async (t) => {
  const bed = await testbed(t);
  const before = await view(bed.haproxy);

  const empty = await runHsdo(["--client", "--once"], clientEnv(bed));
  assert.notEqual(empty.code, 0);
  assert.match(empty.stderr, /no snapshot/);
  assert.match(empty.stderr, /no server has published pool default yet/);
  assertNoStack(empty.stderr);
  assert.deepEqual(await view(bed.haproxy), before);

  // A leader that took over but has not published yet: its head has generation 0, still no snapshot.
  await startPublisher(t, bed.db);
  const stamped = await runHsdo(["--client", "--once"], clientEnv(bed));
  assert.notEqual(stamped.code, 0);
  assert.match(stamped.stderr, /no server has published pool default yet/);
  assert.deepEqual(await view(bed.haproxy), before);

  const client = await startClient(t, bed, "client");
  const readyz = await waitFor("/readyz 503 with a reason", async () => {
    const r = await client.get("/readyz");
    return r.status === 503 && r.body.includes("published") ? r : undefined;
  });
  const reasons = (JSON.parse(readyz.body) as { reasons: string[] }).reasons;
  assert.ok(reasons.some((r) => r.includes("no snapshot")), readyz.body);
  assert.equal((await client.get("/healthz")).status, 200);
  assert.ok((await client.ticks()) >= 1);
  assert.deepEqual(await view(bed.haproxy), before, "HAProxy left as it is");
});

test("a slot item made invalid by hand: logged, kept in maint, counted, and its value never reaches HAProxy", async (t) => {
  const bed = await testbed(t);
  const pub = await startPublisher(t, bed.db);
  const head = await pub.publish([ready(1, 1), ready(2, 2)]);
  const client = await startClient(t, bed, "client", { DEBUG: "true" });
  await waitFor("the snapshot applied", async () => Object.keys(await live(bed.haproxy)).length === 2).catch((e: Error) =>
    assert.fail(`${e.message}\n${client.proc.output().slice(-3000)}`),
  );

  // Written as a publication would be: the slot at G+1, then the head at G+1.
  const bad = "10.0.0.1; shutdown sessions";
  const generation = head.generation + 1;
  const put = (item: Record<string, unknown>) => bed.db.send(new PutItemCommand({ TableName: TABLE, Item: marshall(item) }));
  await put({ pool: POOL, slot: 2, state: "ready", addr: bad, port: 80, name: "t2", weight: 5, generation, epoch: pub.epoch });
  await put({ pool: POOL, slot: 0, generation, epoch: pub.epoch, leader: "test-leader", updatedAt: Date.now(), size: SIZE });

  await waitFor("hsdo_invalid_slots 1", async () => (await client.metric("hsdo_invalid_slots", { pool: POOL })) === 1);
  await waitFor("the invalid slot's server in maint", async () => (await servers(bed.haproxy)).find((s) => s.name === `${PREFIX}2`)?.state === "maint");
  assert.deepEqual(await live(bed.haproxy), { [`${PREFIX}1`]: `10.0.0.1:${PORT}/5` }, "the valid slot keeps serving");
  const srv2 = (await servers(bed.haproxy)).find((s) => s.name === `${PREFIX}2`)!;
  assert.equal(srv2.addr, "10.0.0.2", "the bad address was never set");

  const log = events(client.proc);
  const warned = log.find((e) => e.msg === "invalid slot item kept in maint");
  assert.equal(warned?.slot, 2);
  assert.match(JSON.stringify(warned?.problems), /addr .* is not an IP address/);
  const sent = log.filter((e) => e.msg === "sent").map((e) => String(e.command));
  assert.ok(sent.includes(`set server ${BACKEND}/${PREFIX}2 state maint`), `the client put it in maint:\n${sent.join("\n")}`);
  for (const line of sent) assert.ok(!line.includes("shutdown"), `a sent command carries the bad value: ${line}`);
  // Later ticks leave it alone: nothing left to send, and the count stays.
  const ticks = await client.ticks();
  await waitFor("three more ticks", async () => (await client.ticks()) >= ticks + 3);
  assert.equal(await client.metric("hsdo_invalid_slots", { pool: POOL }), 1);
  assert.equal((await servers(bed.haproxy)).find((s) => s.name === `${PREFIX}2`)?.state, "maint");
});

test("hsdo haproxy-config advises for the HAProxy version: --haproxy-version, else what client.socket reports, else 3.0+ marked", async (t) => {
  const haproxy = await startHaproxy({ body: templateBackend(BACKEND, PREFIX, SIZE) });
  t.after(() => haproxy.stop());
  const env = (socket: string) => ({
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
    CLIENT_HAPROXY_SOCKET_PATH: socket,
    CLIENT_HAPROXY_BACKEND_NAME: BACKEND,
    CLIENT_HAPROXY_BACKEND_BASE_NAME: PREFIX,
  });
  const running = haproxyVersion();
  assert.ok(running && running.major >= 2, "the test bed's HAProxy reports its version");
  const [fromSocket, from26, from30, unknown] = await Promise.all([
    runHsdo(["haproxy-config"], env(haproxy.socket)),
    runHsdo(["haproxy-config", "--haproxy-version", "2.6"], env(haproxy.socket)),
    runHsdo(["haproxy-config", "--haproxy-version", "3.0.11"], env(join(haproxy.dir, "no-such.sock"))),
    runHsdo(["haproxy-config"], env(join(haproxy.dir, "no-such.sock"))),
  ]);
  for (const r of [fromSocket, from26, from30, unknown]) assert.equal(r.code, 0, r.stderr);
  const offered = (text: string) => /^ {4}# {3}default-server hash-key addr-port$/m.test(text);
  assert.equal(offered(fromSocket.stdout), running.major >= 3, `advice for the running ${running.version}:\n${fromSocket.stdout}`);
  assert.ok(fromSocket.stdout.includes(`# HAProxy ${running.major}.${running.minor} `) || fromSocket.stdout.includes(`(HAProxy ${running.major}.${running.minor} `));
  assert.equal(offered(from26.stdout), false);
  assert.match(from26.stdout, /hash-key addr-port needs 3\.0\+/);
  assert.equal(offered(from30.stdout), true);
  assert.match(from30.stdout, /# HAProxy 3\.0 can hash on the address/);
  assert.equal(offered(unknown.stdout), true);
  assert.match(unknown.stdout, /needs HAProxy 3\.0\+/);
});

test("table items at 169.254.169.254 and (without allowLoopback) 127.0.0.1: maint on HAProxy, reported and counted; the knob allows 127.x only", async (t) => {
  const bed = await testbed(t);
  const pub = await startPublisher(t, bed.db);
  const head = await pub.publish([ready(1, 1), ready(2, 2), ready(3, 3)]);
  const client = await startClient(t, bed, "client", { DEBUG: "true" });
  await waitFor("the snapshot applied", async () => Object.keys(await live(bed.haproxy)).length === 3).catch((e: Error) =>
    assert.fail(`${e.message}\n${client.proc.output().slice(-3000)}`),
  );

  // A hand edit (or an older server) moves slot 2 to the metadata service and slot 3 to loopback: valid items, refused addresses.
  const generation = head.generation + 1;
  const put = (item: Record<string, unknown>) => bed.db.send(new PutItemCommand({ TableName: TABLE, Item: marshall(item) }));
  await put({ pool: POOL, slot: 2, state: "ready", addr: "169.254.169.254", port: 80, name: "t2", weight: 5, generation, epoch: pub.epoch });
  await put({ pool: POOL, slot: 3, state: "ready", addr: "127.0.0.1", port: 80, name: "t3", weight: 5, generation, epoch: pub.epoch });
  await put({ pool: POOL, slot: 0, generation, epoch: pub.epoch, leader: "test-leader", updatedAt: Date.now(), size: SIZE });

  await waitFor("hsdo_invalid_slots 2", async () => (await client.metric("hsdo_invalid_slots", { pool: POOL })) === 2).catch((e: Error) =>
    assert.fail(`${e.message}\n${client.proc.output().slice(-3000)}`),
  );
  await waitFor("both servers in maint", async () => Object.keys(await live(bed.haproxy)).length === 1);
  assert.deepEqual(await live(bed.haproxy), { [`${PREFIX}1`]: `10.0.0.1:${PORT}/5` }, "the valid slot keeps serving");
  const byName = new Map((await servers(bed.haproxy)).map((s) => [s.name, s]));
  assert.equal(byName.get(`${PREFIX}2`)?.addr, "10.0.0.2", "169.254.169.254 was never set");
  assert.equal(byName.get(`${PREFIX}3`)?.addr, "10.0.0.3", "127.0.0.1 was never set");

  const log = events(client.proc);
  const problems = log.filter((e) => e.msg === "cannot reconcile").map((e) => String(e.problem));
  assert.ok(
    problems.includes(`${BACKEND}/${PREFIX}2: slot 2 (t2) is refused: addr 169.254.169.254 is link-local (the instance metadata service lives there): never a target`),
    problems.join("\n"),
  );
  assert.ok(problems.some((p) => p.startsWith(`${BACKEND}/${PREFIX}3: slot 3 (t3) is refused: addr 127.0.0.1 is loopback`)), problems.join("\n"));
  const sent = log.filter((e) => e.msg === "sent").map((e) => String(e.command));
  for (const line of sent) assert.ok(!line.includes("169.254") && !line.includes("127.0.0.1"), `a sent command carries a refused address: ${line}`);
  await client.proc.stop("SIGTERM");

  // With allowLoopback, 127.0.0.1 is applied; 169.254.169.254 never (the one-shot run reports it and exits 1).
  const once = await runHsdo(["--client", "--once"], clientEnv(bed, { HSDO_ALLOW_LOOPBACK: "true" }));
  assert.equal(once.code, 1, once.stderr);
  assert.match(once.stderr, /slot 2 \(t2\) is refused: addr 169\.254\.169\.254 is link-local/);
  assert.doesNotMatch(once.stderr, /slot 3 \(t3\) is refused/);
  assert.deepEqual(await live(bed.haproxy), { [`${PREFIX}1`]: `10.0.0.1:${PORT}/5`, [`${PREFIX}3`]: `127.0.0.1:${PORT}/5` });
});

test("a new HAProxy process (restart) is noticed between ticks and reconciled at once, not at the next tick", async (t) => {
  const bed = await testbed(t);
  const pub = await startPublisher(t, bed.db);
  await pub.publish([ready(1, 1), ready(2, 2, 7)]);
  // A long interval: the restore must come from the process watch, not from the next tick.
  const client = await startClient(t, bed, "client", { INTERVAL: "6s", HSDO_CLIENT_MAX_SNAPSHOT_AGE: "1m" });
  const expected = { [`${PREFIX}1`]: `10.0.0.1:${PORT}/5`, [`${PREFIX}2`]: `10.0.0.2:${PORT}/7` };
  await waitFor("the snapshot applied", async () => JSON.stringify(await live(bed.haproxy)) === JSON.stringify(expected), { timeoutMs: 30_000 }).catch((e: Error) =>
    assert.fail(`${e.message}\n${client.proc.output().slice(-3000)}`),
  );
  // Right after a tick, so the next one is a whole interval away.
  const ticks = await client.ticks();
  await waitFor("a tick", async () => (await client.ticks()) > ticks, { timeoutMs: 20_000 });
  const before = await client.ticks();
  const restartedAt = Date.now();
  await bed.haproxy.restart();
  await waitFor("HAProxy restored", async () => JSON.stringify(await live(bed.haproxy)) === JSON.stringify(expected), { timeoutMs: 20_000 }).catch((e: Error) =>
    assert.fail(`${e.message}\n${client.proc.output().slice(-3000)}`),
  );
  const took = Date.now() - restartedAt;
  assert.equal(await client.metric("hsdo_haproxy_new_process_total"), 1, "the new process was seen");
  assert.equal(await client.ticks(), before + 1, "restored by the one tick the new process triggered");
  assert.ok(took < 5000, `restored ${took} ms after the restart, before the next tick (interval 6 s)`);
  assert.ok(events(client.proc).some((e) => e.msg === "new HAProxy process: reconciling now"));
});

test("a --client --once applies a large pool on a fresh HAProxy in one run: 450 live slots of 500, every wave chunked", async (t) => {
  const size = 500;
  const bed = await testbed(t, templateBackend(BACKEND, PREFIX, size));
  const pub = await startPublisherOf(t, bed.db, { table: TABLE, pool: POOL, size });
  const slots: Slot[] = Array.from({ length: size }, (_, i) => {
    const n = i + 1;
    if (n % 10 === 0) return { slot: n, state: "free", weight: 0 };
    return { slot: n, state: n % 20 === 5 ? "drain" : "ready", addr: `10.0.${n >> 8}.${n & 255}`, port: 80, name: `t${n}`, weight: 10 };
  });
  await pub.publish(slots);
  const r = await runHsdo(["--client", "--once"], clientEnv(bed, { HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(size) }), { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const byName = new Map((await servers(bed.haproxy)).map((s) => [s.name, s]));
  for (const s of slots) {
    const got = byName.get(`${PREFIX}${s.slot}`);
    if (s.state === "free") assert.equal(got?.state, "maint", `slot ${s.slot}`);
    else assert.deepEqual([got?.state, got?.addr, got?.port, got?.uweight], [s.state, s.addr, PORT, 10], `slot ${s.slot}`);
  }
});
