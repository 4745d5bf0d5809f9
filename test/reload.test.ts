// HAProxy reloads under traffic: a master-worker HAProxy configured with the
// lines `hsdo haproxy-config` prints (template servers declared by name,
// the server-state file hsdo keeps current) is reloaded again and again
// while request loops run; not one request may fail. Without the state file
// every reload would start the template servers disabled at their placeholder
// until the client's next tick.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, get as httpGet, type Server } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServersState, templateLine } from "@hsdo/client";
import { dynaliteWithTable, dynamoEnv, startHaproxy, startHsdo, freePort, startPublisher, waitFor } from "@hsdo/testkit";

const TABLE = "hsdo";
const POOL = "default";
const SIZE = 4;
const RELOADS = 8;
const LOOPS = 4;

async function origin(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(name));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  return { server, port: typeof addr === "object" && addr ? addr.port : 0 };
}

/** One GET on a new connection (what a reload can break), bounded in time; "ok <origin>" or what went wrong. */
function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = httpGet({ host: "127.0.0.1", port, path: "/", agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(res.statusCode === 200 ? `ok ${body}` : `HTTP ${res.statusCode}`));
      res.on("error", (err) => resolve(`error ${err.message}`));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve(`error ${err.message}`));
  });
}

test(`${RELOADS} reloads of a master-worker HAProxy under request loops: not one request fails`, { timeout: 180_000 }, async (t) => {
  const { dynalite, db } = await dynaliteWithTable(t, TABLE);
  const origins = await Promise.all(["a", "b", "c"].map(origin));
  t.after(() => origins.forEach((o) => o.server.close()));
  const dir = mkdtempSync(join(tmpdir(), "hsdo-reload-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const stateFile = join(dir, "server-state");
  const frontPort = await freePort();
  const haproxy = await startHaproxy({
    masterWorker: true,
    global: [`server-state-file ${stateFile}`],
    defaults: ["load-server-state-from-file global", "retries 0"],
    body: [
      "frontend fe",
      `    bind 127.0.0.1:${frontPort}`,
      "    default_backend be",
      "backend be",
      "    balance roundrobin",
      `    ${templateLine({ prefix: "srv" }, SIZE)}`,
      "",
    ].join("\n"),
  });
  t.after(() => haproxy.stop());

  const pub = await startPublisher(t, db, { table: TABLE, pool: POOL, size: SIZE });
  await pub.publish(
    origins.map((o, i) => ({ slot: i + 1, state: "ready" as const, addr: "127.0.0.1", port: o.port, name: `origin-${i + 1}`, weight: 10 })),
  );
  const client = startHsdo("client", ["--client"], {
    ...dynamoEnv(dynalite.endpoint),
    DYNAMODB_TABLE_NAME: TABLE,
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
    CLIENT_HAPROXY_SOCKET_PATH: haproxy.socket,
    // No port: each origin's own (they listen on ports of their own).
    HSDO_CLIENT_BACKENDS: JSON.stringify([{ name: "be", prefix: "srv", pool: POOL, select: "all" }]),
    HSDO_CLIENT_CACHE_DIR: dir,
    HSDO_ALLOW_LOOPBACK: "true", // the origins listen on 127.0.0.1
    HSDO_CLIENT_SERVER_STATE_FILE: stateFile,
    EXPORTER_PORT: "0",
  });
  t.after(() => client.stop("SIGKILL"));

  const liveServers = async () =>
    (parseServersState(await haproxy.command("show servers state be")).get("be") ?? []).filter((s) => s.state === "ready" && s.opState === 2);
  await waitFor(
    "three origins live in HAProxy",
    async () => {
      if (!client.running()) throw new Error("the client exited");
      return (await liveServers()).length === 3;
    },
    { timeoutMs: 30_000 },
  ).catch((e: Error) =>
    assert.fail(`${e.message}\n${client.output().slice(-3000)}`),
  );
  await waitFor("the server-state file written", () => existsSync(stateFile) && readFileSync(stateFile, "utf8").includes(" srv3 127.0.0.1 "));

  // Bounded request loops: they stop when the reloads are done, or after 2 minutes whatever happens.
  const outcomes = new Map<string, number>();
  let stop = false;
  const until = Date.now() + 120_000;
  const loops = Array.from({ length: LOOPS }, async () => {
    for (let n = 0; !stop && Date.now() < until && n < 50_000; n++) {
      const outcome = await get(frontPort);
      const k = outcome.startsWith("ok ") ? "ok" : outcome;
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    }
  });
  try {
    const okAtLeast = (n: number) => () => {
      if ((outcomes.get("ok") ?? 0) >= n) return true;
      throw new Error(`outcomes so far: ${JSON.stringify([...outcomes])}`);
    };
    await waitFor("requests flowing", okAtLeast(20));
    const pids = [await haproxy.workerPid()];
    for (let i = 0; i < RELOADS; i++) {
      const okBefore = outcomes.get("ok") ?? 0;
      pids.push(await haproxy.reload());
      // Requests reach the new worker before the next reload.
      await waitFor(`requests after reload ${i + 1}`, okAtLeast(okBefore + 20));
    }
    assert.equal(new Set(pids).size, RELOADS + 1, `every reload started a new worker: ${pids.join(", ")}`);
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  const failed = [...outcomes].filter(([k]) => k !== "ok");
  assert.deepEqual(failed, [], `failed requests among ${[...outcomes.values()].reduce((a, b) => a + b, 0)}: ${JSON.stringify(failed)}`);
  assert.ok((outcomes.get("ok") ?? 0) >= 20 * (RELOADS + 1));
  // After the last reload HAProxy still holds exactly what the table says.
  assert.deepEqual(
    (await liveServers()).map((s) => `${s.name} ${s.addr}:${s.port} w${s.uweight}`),
    origins.map((o, i) => `srv${i + 1} 127.0.0.1:${o.port} w10`),
  );
});
