import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeTableCommand, ListTablesCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  createTestTable,
  startDynalite,
  type DynaliteHandle,
  runHsdo,
  startHsdo,
  type HsdoResult,
  freePort,
  rawItems,
  readPool,
  slotMap,
  writeTargets,
  type StaticTarget,
  waitFor,
  instanceId,
  startFakeAws,
} from "@hsdo/testkit";

/**
 * `hsdo` as operators run it: a child process, against dynalite, a static
 * file or the wire-level fake of AWS. One dynalite serves the whole file;
 * each test has its own table or pool.
 */

let dynalite: DynaliteHandle;
let db: DynamoDBClient;
let tables = 0;

before(async () => {
  dynalite = await startDynalite();
  db = dynalite.client();
});
after(async () => {
  db?.destroy();
  await dynalite?.destroy();
});

/** A fresh table (created unless `create` is false), a temp dir for the static file, and the environment to reach both. */
async function bed(t: TestContext, { create = true } = {}) {
  const table = `hsdo-t${++tables}`;
  if (create) await createTestTable(db, table);
  const dir = mkdtempSync(join(tmpdir(), "hsdo-server-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "targets.yaml");
  const env: Record<string, string> = {
    HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
    DYNAMODB_TABLE_NAME: table,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
    SERVER_MODE: "static",
    HSDO_SERVER_STATIC_FILE: file,
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: "4",
    // No HTTP listener: several servers of this file may run at once.
    EXPORTER_PORT: "0",
  };
  return { table, file, env, items: () => rawItems(db, table, "default") };
}

const ABC: StaticTarget[] = [
  { addr: "10.0.0.1", port: 80, name: "a" },
  { addr: "10.0.0.2", port: 80, name: "b" },
  { addr: "10.0.0.3", port: 80, name: "c" },
];

/** The `hsdo: ...` lines of stderr (what the user reads), and no stack trace anywhere. */
function userErrors(r: HsdoResult): string[] {
  assert.doesNotMatch(r.stderr, /^\s+at .+\(.+:\d+:\d+\)$/m, `no stack trace:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /unexpected error/, r.stderr);
  return r.stderr.split("\n").filter((l) => l.startsWith("hsdo: "));
}

/** JSON log events of a process's output, from `offset` on. */
function events(output: string, offset = 0): Record<string, unknown>[] {
  // Up to the last newline: the process may be half-way through a line.
  return output
    .slice(offset, output.lastIndexOf("\n"))
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface StatusRow {
  slot: number;
  state: string;
  weight: string;
  address: string;
  name: string;
}

/** The slot rows of `hsdo status`, cut at the header's column positions (empty cells stay empty). */
function statusRows(stdout: string): StatusRow[] {
  const lines = stdout.split("\n");
  const header = lines.findIndex((l) => l.startsWith("SLOT "));
  assert.ok(header >= 0, `status prints a header:\n${stdout}`);
  const head = lines[header]!;
  const names = ["SLOT", "STATE", "WEIGHT", "ADDRESS", "NAME", "GROUP", "AZ", "SINCE"];
  const starts = names.map((n) => head.indexOf(n));
  assert.ok(starts.every((s, i) => s >= 0 && (i === 0 || s > starts[i - 1]!)), `header columns in order: ${head}`);
  const cell = (line: string, i: number) => line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim();
  const rows: StatusRow[] = [];
  for (const line of lines.slice(header + 1)) {
    if (line.trim() === "") break;
    rows.push({ slot: Number(cell(line, 0)), state: cell(line, 1), weight: cell(line, 2), address: cell(line, 3), name: cell(line, 4) });
  }
  return rows;
}

test("DynamoDB on a closed port: --server --once, status and table create exit 1 with one line naming the endpoint", async (t) => {
  const { env } = await bed(t, { create: false });
  writeTargets(env.HSDO_SERVER_STATIC_FILE!, ABC);
  const port = await freePort();
  const closed = { ...env, HSDO_DYNAMODB_ENDPOINT: `http://127.0.0.1:${port}` };
  const commands = [["--server", "--once"], ["status"], ["table", "create"]];
  const results = await Promise.all(commands.map((args) => runHsdo(args, closed, { timeoutMs: 30_000 })));
  for (const [i, args] of commands.entries()) {
    const r = results[i]!;
    assert.equal(r.code, 1, `hsdo ${args.join(" ")}: ${r.stderr}`);
    const lines = userErrors(r);
    assert.equal(lines.length, 1, `one error line: ${r.stderr}`);
    assert.match(lines[0]!, new RegExp(`^hsdo: DynamoDB at http://127\\.0\\.0\\.1:${port} \\(table hsdo-t\\d+\\): .*ECONNREFUSED`));
  }
});

test("a missing table: server, client, dry run and status exit 2 saying how to create it, and create nothing", async (t) => {
  const { env, table } = await bed(t, { create: false });
  writeTargets(env.HSDO_SERVER_STATIC_FILE!, ABC);
  const client = { CLIENT_HAPROXY_SOCKET_PATH: "/nonexistent/admin.sock", CLIENT_HAPROXY_BACKEND_NAME: "be" };
  // The long-running client waits for its (missing) socket, but a missing table ends the wait: exit 2 all the same.
  const commands = [["--server", "--once"], ["--server", "--once", "--dry-run"], ["--client", "--once"], ["--client"], ["status"]];
  const results = await Promise.all(commands.map((args) => runHsdo(args, { ...env, ...client }, { timeoutMs: 30_000 })));
  for (const [i, args] of commands.entries()) {
    const r = results[i]!;
    assert.equal(r.code, 2, `hsdo ${args.join(" ")}: ${r.stderr}`);
    const lines = userErrors(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.equal(
      lines[0],
      `hsdo: DynamoDB at ${dynalite.endpoint}: table ${table} does not exist: create it with \`hsdo table create\` or the Terraform in infra/`,
    );
  }
  const listed = await db.send(new ListTablesCommand({}));
  assert.ok(!(listed.TableNames ?? []).includes(table), "no command created the table");
});

test("SERVER_MODE=aws with the AWS endpoint unreachable: exit 1, the source error reported, no head or slot written", async (t) => {
  const { env, items } = await bed(t);
  const port = await freePort();
  const aws = {
    ...env,
    SERVER_MODE: "aws",
    SERVER_ASG_NAMES: "web",
    AWS_ENDPOINT_URL_AUTO_SCALING: `http://127.0.0.1:${port}`,
    AWS_ENDPOINT_URL_EC2: `http://127.0.0.1:${port}`,
  };
  const r = await runHsdo(["--server", "--once"], aws, { timeoutMs: 30_000 });
  assert.equal(r.code, 1, r.stderr);
  userErrors(r);
  const failed = events(r.stderr).find((e) => e.msg === "source failed, keeping the published slots");
  assert.ok(failed, `the source failure is logged:\n${r.stderr}`);
  assert.equal(failed.source, "aws");
  assert.match(String(failed.error), /DescribeAutoScalingGroups.*ECONNREFUSED 127\.0\.0\.1:\d+/);
  const written = await items();
  assert.deepEqual(
    written.filter((i) => (i.slot as number) >= 0),
    [],
    "no head and no slot in the table",
  );
  // The one-shot run let its lease go, so a real server need not wait a full lease.
  assert.deepEqual(
    written.map((i) => [i.slot, i.released]),
    [[-1, true]],
  );
});

test("no AWS credentials for a URL endpoint: one-shot commands exit 2 saying what to set; a long-running server logs a credentials problem", async (t) => {
  const { env, table } = await bed(t);
  writeTargets(env.HSDO_SERVER_STATIC_FILE!, ABC);
  const home = mkdtempSync(join(tmpdir(), "hsdo-home-"));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  // No keys, no profile, no instance metadata: the SDK's chain finds nothing.
  const bare: Record<string, string> = { ...env, HOME: home, AWS_EC2_METADATA_DISABLED: "true" };
  delete bare.AWS_ACCESS_KEY_ID;
  delete bare.AWS_SECRET_ACCESS_KEY;
  const commands = [["--server", "--once"], ["status"]];
  const results = await Promise.all(commands.map((args) => runHsdo(args, bare, { timeoutMs: 30_000 })));
  for (const [i, args] of commands.entries()) {
    const r = results[i]!;
    assert.equal(r.code, 2, `hsdo ${args.join(" ")}: ${r.stderr}`);
    const lines = userErrors(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^hsdo: DynamoDB at ${dynalite.endpoint.replace(/[.]/g, "\\.")} \\(table ${table}\\): no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`));
    assert.match(lines[0]!, /a local endpoint \(DynamoDB Local, dynalite\) takes any/);
  }
  const http = await freePort();
  const server = startHsdo("server-no-credentials", ["--server"], { ...bare, EXPORTER_PORT: String(http), HSDO_HTTP_HOST: "127.0.0.1" });
  t.after(() => server.stop());
  await waitFor("the credentials warning", () => /no AWS credentials/.test(server.output()), { timeoutMs: 20_000 }).catch((e: Error) =>
    assert.fail(`${e.message}\n${server.output()}`),
  );
  assert.doesNotMatch(server.output(), /DynamoDB is not answering/, "not taken for an outage");
  // A server that never published: its labelled counters are served at 0 all the same (dashboards, rate() alerts).
  const text = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
  for (const line of [
    'hsdo_source_errors_total{source="static"} 0',
    'hsdo_publications_total{pool="default"} 0',
    'hsdo_safety_valve_held_total{pool="default"} 0',
    'hsdo_lifecycle_completions_total{outcome="ok"} 0',
    'hsdo_lifecycle_completions_total{outcome="failed"} 0',
  ]) {
    assert.ok(text.split("\n").includes(line), `${line} in /metrics:\n${text}`);
  }
  assert.match(text, /^hsdo_tick_errors_total\{role="server"\} \d+$/m);
});

test("--log-level warn hides info events; SIGHUP re-reads logLevel from the file, is logged, and the server keeps running", async (t) => {
  const { env, table } = await bed(t);
  writeTargets(env.HSDO_SERVER_STATIC_FILE!, ABC);
  const dir = mkdtempSync(join(tmpdir(), "hsdo-sighup-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "hsdo.yaml");
  writeFileSync(file, "logLevel: warn\n");
  const server = startHsdo("server-sighup", ["--server", "--config", file], { ...env, EXPORTER_PORT: "0", INTERVAL: "300ms" });
  t.after(() => server.stop());
  await waitFor("a publication", async () => ((await readPool(db, table, "default"))?.head.generation ?? 0) >= 1, { timeoutMs: 20_000 }).catch((e: Error) =>
    assert.fail(`${e.message}\n${server.output()}`),
  );
  assert.doesNotMatch(server.output(), /"level":"info"/, `no info event at warn:\n${server.output()}`);

  writeFileSync(file, "logLevel: debug\n");
  server.signal("SIGHUP");
  await waitFor("the SIGHUP line", () => events(server.output()).find((e) => typeof e.msg === "string" && e.msg.startsWith("SIGHUP:")), { timeoutMs: 10_000 }).catch((e: Error) =>
    assert.fail(`${e.message}\n${server.output()}`),
  );
  const hup = events(server.output()).find((e) => typeof e.msg === "string" && e.msg.startsWith("SIGHUP:"))!;
  assert.equal(hup.logLevel, "debug");
  assert.equal(hup.was, "warn");
  assert.match(String(hup.msg), /log level only \(other changes need a restart\)/);
  // Now a change of the targets is told at info again.
  writeTargets(env.HSDO_SERVER_STATIC_FILE!, ABC.slice(0, 2));
  await waitFor("an info event", () => /"level":"info"/.test(server.output()), { timeoutMs: 10_000 }).catch((e: Error) => assert.fail(`${e.message}\n${server.output()}`));
  assert.ok(server.running(), "SIGHUP did not end the process");

  // A file that no longer parses changes nothing and stops nothing.
  writeFileSync(file, "logLevel: loud\n");
  server.signal("SIGHUP");
  await waitFor("the refusal", () => /SIGHUP: the configuration cannot be read; nothing changed/.test(server.output()), { timeoutMs: 10_000 });
  assert.ok(server.running());

  const flagged = await runHsdo(["--server", "--once", "--log-level", "error"], env);
  assert.equal(flagged.code, 0, flagged.stderr);
  assert.equal(flagged.stderr.trim(), "", "--log-level error: nothing below error is written");
});

test("`hsdo table create` refuses an in-memory embedded store (exit 2); an embedded port in use exits 2 naming dynamodb.embeddedPort", async (t) => {
  const { env } = await bed(t, { create: false });
  const memory = await runHsdo(["table", "create"], { ...env, HSDO_DYNAMODB_ENDPOINT: "embedded" });
  assert.equal(memory.code, 2, memory.stderr);
  const lines = userErrors(memory);
  assert.equal(lines.length, 1, memory.stderr);
  assert.match(lines[0]!, /^hsdo: table create: dynamodb\.endpoint is embedded without dynamodb\.embeddedPath, an in-memory store that keeps nothing/);
  assert.match(lines[0]!, /set dynamodb\.embeddedPath to a directory/);
  assert.doesNotMatch(memory.stdout, /already exists|created/, "no table is reported");

  const held = createServer();
  await new Promise<void>((resolve) => held.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => held.close(() => resolve())));
  const port = (held.address() as AddressInfo).port;
  const busy = await runHsdo(["status"], { ...env, HSDO_DYNAMODB_ENDPOINT: "embedded", HSDO_DYNAMODB_EMBEDDED_PORT: String(port) });
  assert.equal(busy.code, 2, busy.stderr);
  const busyLines = userErrors(busy);
  assert.equal(busyLines.length, 1, busy.stderr);
  assert.match(busyLines[0]!, new RegExp(`^hsdo: dynamodb\\.embeddedPort: ${port} cannot be listened on \\(.*EADDRINUSE.*\\): pick a free port, or 0 for any$`));
});

test("`hsdo table create` creates the table, then says it exists; both exit 0", async (t) => {
  const { env, table } = await bed(t, { create: false });
  const first = await runHsdo(["table", "create"], env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`table ${table} created and ACTIVE`));
  const d = await db.send(new DescribeTableCommand({ TableName: table }));
  assert.equal(d.Table?.TableStatus, "ACTIVE");
  assert.deepEqual(
    d.Table?.KeySchema?.map((k) => [k.AttributeName, k.KeyType]),
    [
      ["pool", "HASH"],
      ["slot", "RANGE"],
    ],
  );
  const again = await runHsdo(["table", "create"], env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`table ${table} already exists with hsdo's key schema`));
});

test("--server --once publishes; status prints slots then leader/epoch/generation; --json is the snapshot; an unpublished pool has no snapshot", async (t) => {
  const { env, table } = await bed(t);
  writeTargets(env.HSDO_SERVER_STATIC_FILE!, ABC);
  const once = await runHsdo(["--server", "--once"], { ...env, HSDO_SERVER_ID: "once-1" });
  assert.equal(once.code, 0, once.stderr);

  const [status, json, none, noneJson] = await Promise.all([
    runHsdo(["status"], env),
    runHsdo(["status", "--json"], env),
    runHsdo(["status", "--pool", "never-published"], env),
    runHsdo(["status", "--json", "--pool", "never-published"], env),
  ]);
  assert.equal(status.code, 0, status.stderr);
  assert.deepEqual(statusRows(status.stdout), [
    { slot: 1, state: "ready", weight: "1", address: "10.0.0.1:80", name: "a" },
    { slot: 2, state: "ready", weight: "1", address: "10.0.0.2:80", name: "b" },
    { slot: 3, state: "ready", weight: "1", address: "10.0.0.3:80", name: "c" },
    { slot: 4, state: "free", weight: "", address: "", name: "" },
  ]);
  const tail = status.stdout.slice(status.stdout.indexOf("\n\n"));
  assert.match(tail, /pool default: 3 ready, 0 drain, 1 free/);
  assert.match(tail, /leader once-1, epoch 1, generation 1, published /);
  assert.match(tail, /lease: once-1, epoch 1 \(released\)/);

  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { pool: string; snapshot: { head: { generation: number; leader: string; size: number }; slots: { slot: number; name?: string; state: string }[] } };
  assert.equal(parsed.pool, "default");
  assert.equal(parsed.snapshot.head.generation, 1);
  assert.equal(parsed.snapshot.head.leader, "once-1");
  assert.equal(parsed.snapshot.head.size, 4);
  assert.deepEqual(
    parsed.snapshot.slots.map((s) => [s.slot, s.state, s.name ?? null]),
    [
      [1, "ready", "a"],
      [2, "ready", "b"],
      [3, "ready", "c"],
      [4, "free", null],
    ],
  );
  assert.deepEqual(parsed.snapshot, JSON.parse(JSON.stringify(await readPool(db, table, "default"))), "--json prints the snapshot as the table holds it");

  assert.equal(none.code, 1);
  assert.match(none.stdout, new RegExp(`pool never-published in table ${table}: no snapshot yet`));
  assert.equal(noneJson.code, 1);
  assert.equal((JSON.parse(noneJson.stdout) as { snapshot: unknown }).snapshot, null);
});

test("--server --once --dry-run prints the writes it would publish and writes nothing", async (t) => {
  const { env, items, table } = await bed(t);
  writeTargets(env.HSDO_SERVER_STATIC_FILE!, ABC.slice(0, 2));
  const dry = await runHsdo(["--server", "--once", "--dry-run"], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^dry run: would publish generation 1:$/m);
  assert.match(dry.stdout, /^ {2}slot 1: \{(?=.*"name":"a")(?=.*"state":"ready").*\}$/m);
  assert.match(dry.stdout, /^ {2}slot 2: \{.*"name":"b".*\}$/m);
  assert.match(dry.stdout, /^ {2}head: \{.*"generation":1.*\}$/m);
  assert.deepEqual(await items(), [], "an empty pool stays empty: no lease, no head, no slot");

  const real = await runHsdo(["--server", "--once"], env);
  assert.equal(real.code, 0, real.stderr);
  const before = await items();
  writeTargets(env.HSDO_SERVER_STATIC_FILE!, ABC);
  const dry2 = await runHsdo(["--server", "--once", "--dry-run"], env);
  assert.equal(dry2.code, 0, dry2.stderr);
  assert.match(dry2.stdout, /^dry run: would publish generation 2:$/m);
  const slotLines = dry2.stdout.split("\n").filter((l) => /^ {2}slot \d+:/.test(l));
  assert.equal(slotLines.length, 1, `only the change is written:\n${dry2.stdout}`);
  assert.match(slotLines[0]!, /^ {2}slot 3: \{.*"name":"c".*\}$/);
  assert.deepEqual(await items(), before, "the dry run left the table as it was");
  assert.deepEqual(slotMap(await readPool(db, table, "default")), { 1: "a:ready", 2: "b:ready" });
});

test("SERVER_MODE=aws against the fake AWS: slots fill, weights ramp, churn never moves a survivor", async (t) => {
  const { env, table } = await bed(t);
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  const launch = (n: number) => Date.UTC(2025, 0, 1, 0, n);
  const inst = (n: number) => ({ id: instanceId(n), ip: `10.1.0.${n}`, az: "eu-west-1a", launchTime: launch(n) });
  fake.setGroup("web", [inst(1), inst(2), inst(3)]);
  const server = startHsdo("server", ["--server"], {
    ...env,
    ...fake.env(),
    SERVER_MODE: "aws",
    SERVER_ASG_NAMES: "web",
    HSDO_SERVER_AWS_PORT: "8080",
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: "5",
    INTERVAL: "250ms",
    HSDO_SERVER_DRAIN: "1s",
    SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT: "100",
    SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL: "300ms",
  });
  t.after(() => server.stop("SIGKILL"));

  // Every pool read during the test: an instance seen in two slots would be a move.
  const seenIn = new Map<string, Set<number>>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const snap = await readPool(db, table, "default").catch(() => undefined);
      for (const s of snap?.slots ?? []) {
        if (s.state === "free" || !s.name) continue;
        const slots = seenIn.get(s.name) ?? new Set<number>();
        slots.add(s.slot);
        seenIn.set(s.name, slots);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  t.after(async () => {
    watching = false;
    await watcher;
  });

  await waitFor("three instances published", async () => Object.keys(slotMap(await readPool(db, table, "default"))).length === 3 || undefined);
  const first = await runHsdo(["status"], env);
  assert.equal(first.code, 0, first.stderr);
  const rows1 = statusRows(first.stdout).filter((r) => r.state !== "free");
  assert.deepEqual(
    rows1.map((r) => [r.slot, r.state, r.name, r.address]),
    [1, 2, 3].map((n) => [n, "ready", instanceId(n), `10.1.0.${n}:8080`]),
    "instances in launch order, in the lowest slots",
  );
  const w1 = rows1.map((r) => Number(r.weight));
  await waitFor("weights grow in the table", async () => {
    const snap = await readPool(db, table, "default");
    return snap?.slots.slice(0, 3).every((s, i) => s.weight > w1[i]!) || undefined;
  });
  const second = await runHsdo(["status"], env);
  const w2 = statusRows(second.stdout)
    .filter((r) => r.state !== "free")
    .map((r) => Number(r.weight));
  assert.equal(w2.length, 3);
  w2.forEach((w, i) => assert.ok(w > w1[i]! && w <= 100, `slot ${i + 1} ramps: ${w1[i]} then ${w}`));

  // Churn: one is gone from the group (freed at once, no drain), one joins (lowest free slot), one joins into the freed slot, one is terminating (drains).
  fake.setGroup("web", [inst(1), inst(3), inst(4)]);
  await waitFor("i-2 is gone: slot 2 freed at once, i-4 takes slot 4", async () => {
    const m = slotMap(await readPool(db, table, "default"));
    return (m[2] === undefined && m[4] === `${instanceId(4)}:ready`) || undefined;
  });
  fake.setGroup("web", [inst(1), inst(3), inst(4), inst(5)]);
  await waitFor("i-5 takes the freed slot 2", async () => slotMap(await readPool(db, table, "default"))[2] === `${instanceId(5)}:ready` || undefined);
  const last = await runHsdo(["status"], env);
  assert.deepEqual(
    statusRows(last.stdout).map((r) => [r.slot, r.state, r.name]),
    [
      [1, "ready", instanceId(1)],
      [2, "ready", instanceId(5)],
      [3, "ready", instanceId(3)],
      [4, "ready", instanceId(4)],
      [5, "free", ""],
    ],
  );
  fake.updateInstance(instanceId(1), { lifecycleState: "Terminating:Wait" });
  const final = await waitFor("i-1 drains in place", async () => {
    const m = slotMap(await readPool(db, table, "default"));
    return m[1] === `${instanceId(1)}:drain` ? m : undefined;
  });
  assert.deepEqual(final, {
    1: `${instanceId(1)}:drain`,
    2: `${instanceId(5)}:ready`,
    3: `${instanceId(3)}:ready`,
    4: `${instanceId(4)}:ready`,
  });

  watching = false;
  await watcher;
  for (const [name, slots] of seenIn) assert.equal(slots.size, 1, `${name} was seen in slots ${[...slots].join(", ")}`);
  assert.equal(seenIn.size, 5, "all five instances were seen");
  assert.deepEqual(fake.protocolErrors, []);
  assert.deepEqual([...new Set(fake.describedIds)].sort(), [1, 2, 3, 4, 5].map(instanceId), "every instance described once");
  assert.equal(fake.describedIds.length, 5, `no instance described twice: ${fake.describedIds.join(", ")}`);
});

test("SERVER_MODE=aws, full pool: an instance gone from the ASG is freed (maint) for one generation, then its replacement takes the slot", async (t) => {
  const { env, table } = await bed(t);
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  const inst = (n: number) => ({ id: instanceId(n), ip: `10.1.0.${n}`, az: "eu-west-1a", launchTime: Date.UTC(2025, 0, 1, 0, n) });
  fake.setGroup("web", [inst(1), inst(2), inst(3)]);
  const server = startHsdo("server", ["--server"], {
    ...env,
    ...fake.env(),
    SERVER_MODE: "aws",
    SERVER_ASG_NAMES: "web",
    HSDO_SERVER_AWS_PORT: "8080",
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: "3",
    INTERVAL: "250ms",
    HSDO_SERVER_DRAIN: "30s",
  });
  t.after(() => server.stop("SIGKILL"));
  await waitFor("three instances published", async () => Object.keys(slotMap(await readPool(db, table, "default"))).length === 3 || undefined);
  const offset = server.output().length;
  // i-2 is no longer listed (terminated and gone) and its replacement i-4 is: no 30 s drain for what is not there.
  fake.setGroup("web", [inst(1), inst(3), inst(4)]);
  const final = await waitFor("i-4 takes slot 2", async () => {
    const m = slotMap(await readPool(db, table, "default"));
    return m[2] === `${instanceId(4)}:ready` ? m : undefined;
  }).catch((e: Error) => assert.fail(`${e.message}\n${server.output().slice(-3000)}`));
  assert.deepEqual(final, { 1: `${instanceId(1)}:ready`, 2: `${instanceId(4)}:ready`, 3: `${instanceId(3)}:ready` });
  const changes = events(server.output(), offset).filter((e) => e.msg === "slot changed" && e.slot === 2);
  assert.deepEqual(
    changes.map((e) => [e.state, e.name]),
    [
      ["free", instanceId(2)],
      ["ready", instanceId(4)],
    ],
    "free (remembering i-2) for one generation, then i-4",
  );
  assert.equal(Number(changes[1]!.generation), Number(changes[0]!.generation) + 1);
  assert.ok(events(server.output(), offset).some((e) => String(e.msg).startsWith("target gone from the source") && e.name === instanceId(2)));
  assert.deepEqual(fake.protocolErrors, []);
});

test("safety valve at process level: an emptied file is held for confirmTicks-1 ticks, then the targets are freed (gone, not leaving), and they come back to their slots", async (t) => {
  const { env, file, table } = await bed(t);
  writeTargets(file, ABC);
  const CONFIRM = 3;
  const server = startHsdo("server", ["--server"], {
    ...env,
    HSDO_SERVER_ID: "valve",
    INTERVAL: "600ms",
    HSDO_SERVER_CONFIRM_TICKS: String(CONFIRM),
    HSDO_SERVER_DRAIN: "30s",
  });
  t.after(() => server.stop("SIGKILL"));
  const published = await waitFor("a, b, c published", async () => {
    const snap = await readPool(db, table, "default");
    return Object.keys(slotMap(snap)).length === 3 ? snap : undefined;
  });
  const offset = server.output().length;
  writeTargets(file, []);

  await waitFor("the valve holds the empty answer", () => events(server.output(), offset).some((e) => String(e.msg).startsWith("safety valve")));
  const held = await readPool(db, table, "default");
  assert.deepEqual(slotMap(held), { 1: "a:ready", 2: "b:ready", 3: "c:ready" }, "held: nothing drained");
  assert.equal(held!.head.generation, published!.head.generation, "held: nothing published");

  // Removed from the file is gone, not leaving: nothing to drain, each slot is freed remembering its target.
  const freed = await waitFor("the confirmed answer frees all three", async () => {
    const snap = await readPool(db, table, "default");
    return snap && snap.head.generation > published!.head.generation && Object.keys(slotMap(snap)).length === 0 ? snap : undefined;
  });
  assert.deepEqual(freed.slots.slice(0, 3).map((x) => x.last), ["a", "b", "c"], "each free slot remembers its target");

  // The log tells the story in order: held on ticks 1..CONFIRM-1, then the slots freed.
  const story = events(server.output(), offset).filter((e) => String(e.msg).startsWith("safety valve") || e.msg === "slot changed");
  const valve = story.filter((e) => String(e.msg).startsWith("safety valve"));
  assert.equal(valve.length, CONFIRM - 1, `held for ${CONFIRM - 1} ticks:\n${JSON.stringify(story, null, 1)}`);
  assert.deepEqual(
    valve.map((e) => [e.seen, e.live, e.removing, e.confirmTicks]),
    Array.from({ length: CONFIRM - 1 }, (_, i) => [i + 1, 3, 3, CONFIRM]),
  );
  assert.deepEqual(
    story.slice(0, CONFIRM - 1).map((e) => e.msg),
    valve.map((e) => e.msg),
    "no slot changed while the valve held",
  );
  assert.deepEqual(
    story.slice(CONFIRM - 1, CONFIRM + 2).map((e) => [e.slot, e.state]),
    [
      [1, "free"],
      [2, "free"],
      [3, "free"],
    ],
  );

  // The file is restored (in another order): each target takes its old slot back.
  writeTargets(file, [...ABC].reverse());
  const back = await waitFor("a, b, c back", async () => {
    const m = slotMap(await readPool(db, table, "default"));
    return Object.keys(m).length === 3 ? m : undefined;
  });
  assert.deepEqual(back, { 1: "a:ready", 2: "b:ready", 3: "c:ready" }, "old slots, whatever the file order");
});

test("restarted with a size below an occupied slot, the server refuses (exit 2, names size) and leaves the table as it is", async (t) => {
  const { env, file, items } = await bed(t);
  writeTargets(file, ABC);
  const first = startHsdo("server", ["--server"], { ...env, INTERVAL: "300ms" });
  t.after(() => first.stop("SIGKILL"));
  await waitFor("a, b, c published", async () => Object.keys(slotMap(await readPool(db, env.DYNAMODB_TABLE_NAME!, "default"))).length === 3 || undefined);
  await first.stop("SIGTERM");
  const before = await items();

  const r = await runHsdo(["--server"], { ...env, INTERVAL: "300ms", HAPROXY_BACKEND_SERVERS_LIST_SIZE: "2" });
  assert.equal(r.code, 2, r.stderr);
  const lines = userErrors(r);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^hsdo: HAPROXY_BACKEND_SERVERS_LIST_SIZE \(size\): 2 is below slot 3, which holds c \(ready\); raise size to at least 3/);
  assert.deepEqual(await items(), before, "nothing written: not even the lease was contended");
});

test("a busy HTTP port exits 2 with one line naming http.port, not a stack", async (t) => {
  const { env, file } = await bed(t);
  writeTargets(file, ABC);
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", () => resolve()));
  t.after(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const r = await runHsdo(["--server"], { ...env, EXPORTER_PORT: String(port), HSDO_HTTP_HOST: "127.0.0.1" });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`hsdo: http\\.port \\(EXPORTER_PORT\\): ${port} cannot be listened on at 127\\.0\\.0\\.1: EADDRINUSE`));
  assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
});

/** The `target kept out` events of a run, as id -> problems. */
function keptOut(r: HsdoResult): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events(r.stderr)) if (e.msg === "target kept out: it cannot be published") out[String(e.id)] = String(e.problems);
  return out;
}

test("static source: a target at 169.254.169.254 is never published; 127.0.0.1 only with HSDO_ALLOW_LOOPBACK", async (t) => {
  const { env, file, table } = await bed(t);
  writeTargets(file, [
    { addr: "10.0.0.1", port: 80, name: "a" },
    { addr: "169.254.169.254", port: 80, name: "imds" },
    { addr: "::ffff:169.254.169.254", port: 80, name: "imds-mapped" },
    { addr: "127.0.0.1", port: 80, name: "lo" },
  ]);
  const off = await runHsdo(["--server", "--once"], { ...env, HSDO_SERVER_ID: "off" });
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(slotMap(await readPool(db, table, "default")), { 1: "a:ready" });
  const kept = keptOut(off);
  assert.deepEqual(Object.keys(kept).sort(), ["imds", "imds-mapped", "lo"]);
  assert.match(kept.imds!, /addr 169\.254\.169\.254 is link-local \(the instance metadata service lives there\): never a target/);
  assert.match(kept.lo!, /addr 127\.0\.0\.1 is loopback .*allowLoopback/);

  const on = await runHsdo(["--server", "--once"], { ...env, HSDO_SERVER_ID: "on", HSDO_ALLOW_LOOPBACK: "true" });
  assert.equal(on.code, 0, on.stderr);
  assert.deepEqual(slotMap(await readPool(db, table, "default")), { 1: "a:ready", 2: "lo:ready" });
  assert.deepEqual(Object.keys(keptOut(on)).sort(), ["imds", "imds-mapped"], "the knob allows loopback, never link-local");
  const pool = await readPool(db, table, "default");
  assert.ok(!pool?.slots.some((s) => s.addr?.includes("169.254")), "no slot holds the metadata address");
});

test("AWS source: an instance whose private address is 169.254.169.254 is not published, the others are", async (t) => {
  const { env, table } = await bed(t);
  const aws = await startFakeAws();
  t.after(() => aws.stop());
  const launch = Date.UTC(2025, 0, 1);
  aws.setGroup("web", [
    { id: instanceId(1), ip: "10.0.1.1", az: "us-east-1a", launchTime: launch, lifecycleState: "InService", healthStatus: "Healthy" },
    { id: instanceId(2), ip: "169.254.169.254", az: "us-east-1a", launchTime: launch + 1000, lifecycleState: "InService", healthStatus: "Healthy" },
  ]);
  const r = await runHsdo(["--server", "--once"], { ...env, ...aws.env(), SERVER_MODE: "aws", SERVER_ASG_NAMES: "web", HSDO_SERVER_AWS_PORT: "80", HSDO_ALLOW_LOOPBACK: "1" });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(slotMap(await readPool(db, table, "default")), { 1: `${instanceId(1)}:ready` });
  assert.match(keptOut(r)[instanceId(2)] ?? "", /link-local/, r.stderr);
});
