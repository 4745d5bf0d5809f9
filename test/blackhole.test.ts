// Fail static when DynamoDB does not answer at all: a black hole (TCP
// accepted, never answered: a security group or an endpoint policy) and a
// frozen dynalite (SIGSTOP). A client and its HAProxy restarted during the
// outage restore HAProxy from the client's cache within two intervals, and
// once DynamoDB answers again the client catches up within two intervals.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { parseServersState } from "@hsdo/client";
import type { Slot } from "@hsdo/core";
import { dynaliteWithTable, dynamoEnv, startHaproxy, templateBackend, type HaproxyHandle, startHsdo, type Proc, startPublisher, waitFor } from "@hsdo/testkit";

const TABLE = "hsdo";
const POOL = "default";
const SIZE = 4;
const INTERVAL_MS = 1000;

/**
 * A TCP relay in front of dynalite that can turn into a black hole: new
 * connections are accepted and never answered, and connections already
 * open stop moving, as behind a security group that drops packets.
 */
async function relay(t: TestContext, target: number): Promise<{ endpoint: string; blackHole(on: boolean): void }> {
  let hole = false;
  const open = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    open.add(inbound);
    inbound.on("close", () => open.delete(inbound));
    inbound.on("error", () => inbound.destroy());
    if (hole) return; // accepted, never answered
    const outbound = connect(target, "127.0.0.1");
    open.add(outbound);
    outbound.on("close", () => open.delete(outbound));
    outbound.on("error", () => inbound.destroy());
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const s of open) s.destroy();
    server.close();
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    blackHole(on) {
      hole = on;
      // Open connections freeze: nothing more goes either way.
      if (on) for (const s of open) s.pause(), s.unpipe();
      else for (const s of open) s.destroy();
    },
  };
}

function ready(slot: number, n: number, weight = 5): Slot {
  return { slot, state: "ready", addr: `10.0.0.${n}`, port: 80, name: `t${n}`, weight, since: 1_700_000_000_000 };
}

async function live(haproxy: HaproxyHandle): Promise<string> {
  const servers = parseServersState(await haproxy.command("show servers state be")).get("be") ?? [];
  return servers
    .filter((s) => s.state !== "maint")
    .map((s) => `${s.name}=${s.addr}:${s.port}/${s.uweight}`)
    .join(" ");
}

/** The client's JSON log events with their time. */
function events(proc: Proc): { time: number; msg: string; [k: string]: unknown }[] {
  return proc
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { time: string; msg: string })
    .map((e) => ({ ...e, time: Date.parse(e.time) }));
}

type Outage = "black hole" | "SIGSTOP";

for (const outage of ["black hole", "SIGSTOP"] as Outage[]) {
  test(`DynamoDB ${outage === "black hole" ? "black-holed (TCP accepted, never answered)" : "frozen (SIGSTOP)"}: a restarted client and HAProxy restore from the cache within 2 intervals, and catch up within 2 intervals after`, async (t) => {
    const { dynalite, db } = await dynaliteWithTable(t, TABLE);
    const front = await relay(t, dynalite.port);
    const haproxy = await startHaproxy({ body: templateBackend("be", "srv", SIZE) });
    t.after(() => haproxy.stop());
    const cache = mkdtempSync(join(tmpdir(), "hsdo-blackhole-"));
    t.after(() => rmSync(cache, { recursive: true, force: true }));
    const pub = await startPublisher(t, db, { table: TABLE, pool: POOL, size: SIZE });
    await pub.publish([ready(1, 1), ready(2, 2, 7)]);

    const env = {
      ...dynamoEnv(front.endpoint),
      DYNAMODB_TABLE_NAME: TABLE,
      HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
      CLIENT_HAPROXY_SOCKET_PATH: haproxy.socket,
      CLIENT_HAPROXY_BACKEND_NAME: "be",
      CLIENT_HAPROXY_BACKEND_BASE_NAME: "srv",
      CLIENT_HAPROXY_BACKEND_SERVER_PORT: "8080",
      INTERVAL: `${INTERVAL_MS}ms`,
      HSDO_CLIENT_CACHE_DIR: cache,
      EXPORTER_PORT: "0",
    };
    const expected = "srv1=10.0.0.1:8080/5 srv2=10.0.0.2:8080/7";
    const first = startHsdo("client-1", ["--client"], env);
    t.after(() => first.stop("SIGKILL"));
    await waitFor("the snapshot applied and cached", async () => (await live(haproxy)) === expected && readdirSync(cache).some((f) => f.startsWith("hsdo-snapshot-"))).catch(
      (e: Error) => assert.fail(`${e.message}\n${first.output().slice(-3000)}`),
    );

    // The outage begins; during it the client and HAProxy both restart.
    if (outage === "black hole") front.blackHole(true);
    else process.kill(dynalite.proc.pid, "SIGSTOP");
    t.after(() => (outage === "SIGSTOP" ? dynalite.proc.running() && process.kill(dynalite.proc.pid, "SIGCONT") : undefined));
    await first.stop("SIGTERM");
    await haproxy.restart();
    assert.equal(await live(haproxy), "", "HAProxy serves nothing after its restart");

    const second = startHsdo("client-2", ["--client"], env);
    t.after(() => second.stop("SIGKILL"));
    await waitFor("HAProxy restored from the cache", async () => (await live(haproxy)) === expected, { timeoutMs: 30_000 }).catch((e: Error) =>
      assert.fail(`${e.message}\n${second.output().slice(-3000)}`),
    );
    // HAProxy can hold the state a moment before the client's log line about it is read from its pipe.
    await waitFor("the apply logged", () => events(second).some((e) => e.msg === "applied changes to HAProxy"), { timeoutMs: 5_000 }).catch(() => undefined);
    const log = events(second);
    const up = log.find((e) => e.msg === "HAProxy ready");
    const restored = log.find((e) => e.msg === "applied changes to HAProxy");
    assert.ok(up && restored, second.output().slice(-3000));
    assert.ok(log.some((e) => e.msg === "loaded the last good snapshot from the cache"), "restored from the cache");
    assert.ok(
      restored.time - up.time <= 2 * INTERVAL_MS,
      `restored ${restored.time - up.time} ms after the client reached HAProxy (limit 2 intervals, ${2 * INTERVAL_MS} ms)`,
    );

    // Ticks go on through the outage, each bounded by the interval: the table read is reported, HAProxy keeps its state.
    await waitFor("the unreadable table reported", () => events(second).some((e) => e.msg === "cannot read the table, HAProxy keeps its last state"));
    assert.equal(await live(haproxy), expected);

    // A change is published meanwhile (straight to dynalite once it answers), then the outage ends.
    if (outage === "SIGSTOP") {
      process.kill(dynalite.proc.pid, "SIGCONT");
      // The test's own client has one attempt per request: a connection it kept through the freeze may be dead.
      await waitFor("dynalite answers again", async () => Boolean(await db.send(new DescribeTableCommand({ TableName: TABLE }))));
    }
    await waitFor("the change published", () => pub.publish([ready(3, 3, 9)]).then(() => true));
    const ended = Date.now();
    if (outage === "black hole") front.blackHole(false);
    const next = `${expected} srv3=10.0.0.3:8080/9`;
    await waitFor("the client catches up", async () => (await live(haproxy)) === next, { timeoutMs: 30_000 }).catch((e: Error) =>
      assert.fail(`${e.message}\n${second.output().slice(-3000)}`),
    );
    const caught = events(second).find((e) => e.msg === "new snapshot" && e.time >= ended - 50);
    assert.ok(caught, second.output().slice(-2000));
    assert.ok(caught.time - ended <= 2 * INTERVAL_MS, `caught up ${caught.time - ended} ms after the outage ended (limit ${2 * INTERVAL_MS} ms)`);
  });
}
