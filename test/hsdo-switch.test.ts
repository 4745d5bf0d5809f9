// The README's "Moving from HSDO" runbook, step by step, on real HAProxy
// nodes: HSDO's table as HSDO left it (its server stopped), `hsdo
// import-hsdo` (dry run, then --apply), `hsdo --server` in AWS mode on the
// same instances, then the clients switched node by node, then the HSDO
// table removed. At every step, server k of every node is HSDO's slot k.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { parseServersState } from "@hsdo/client";
import { hsdoClientSettings, hsdoCommands, type HsdoItem } from "@hsdo/core";
import { dynaliteWithTable, startHaproxy, templateBackend, type HaproxyHandle, runHsdo, startHsdo, createHsdoTable, hsdoEnabled, hsdoFree, hsdoItems, putHsdoItems, readPool, waitFor, instanceId, startFakeAws, dynamoEnv } from "@hsdo/testkit";

const SIZE = 8;
const BACKEND = "be";
const PREFIX = "srv";
const PORT = 8080;
const HSDO_TABLE = "hsdo-legacy";
const TABLE = "hsdo";

/** HSDO's table: six instances (slot 4 from HSDO v2, no ASG), slots 3 and 7 free, mid-ramp weights. */
const ITEMS: HsdoItem[] = [
  hsdoEnabled(1, { id: instanceId(1), ip: "10.2.0.1", asg: "web-a", weight: 10 }),
  hsdoEnabled(2, { id: instanceId(2), ip: "10.2.0.2", asg: "web-a", weight: 6 }),
  hsdoFree(3),
  hsdoEnabled(4, { id: instanceId(4), ip: "10.2.0.4", weight: 10 }),
  hsdoEnabled(5, { id: instanceId(5), ip: "10.2.0.5", asg: "web-a", weight: 2 }),
  hsdoEnabled(6, { id: instanceId(6), ip: "10.2.0.6", asg: "web-a", weight: 10 }),
  hsdoFree(7),
  hsdoEnabled(8, { id: instanceId(8), ip: "10.2.0.8", asg: "web-a", weight: 9 }),
];

/** What an HSDO client sets from ITEMS (its haproxy.py, CLIENT_HAPROXY_BACKEND_SERVER_PORT for the port). */
const HSDO_VIEW = hsdoClientSettings(ITEMS, { backends: [{ name: BACKEND, baseName: PREFIX, serverPort: PORT }] });

/** server -> what hsdo drives of it: maint, or addr:port and weight when live. */
async function view(haproxy: HaproxyHandle): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of parseServersState(await haproxy.command(`show servers state ${BACKEND}`)).get(BACKEND) ?? []) {
    out[s.name] = s.state === "maint" ? "maint" : `${s.state} ${s.addr}:${s.port} w${s.uweight}`;
  }
  return out;
}

function expectedView(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of HSDO_VIEW.values()) out[s.server] = s.state === "maint" ? "maint" : `ready ${s.addr}:${s.port} w${s.weight}`;
  return out;
}

test("moving from HSDO, node by node: every HAProxy node has server k = HSDO's slot k throughout", async (t: TestContext) => {
  const { dynalite, db } = await dynaliteWithTable(t, TABLE);
  const cache = mkdtempSync(join(tmpdir(), "hsdo-switch-"));
  t.after(() => rmSync(cache, { recursive: true, force: true }));
  const env: Record<string, string> = {
    ...dynamoEnv(dynalite.endpoint),
    DYNAMODB_TABLE_NAME: TABLE,
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
    SERVER_MODE: "aws",
    SERVER_ASG_NAMES: "web-a",
    // Servers and import share the ramp; a slow one keeps the imported weights for the whole test.
    HSDO_SERVER_WEIGHT_INTERVAL: "10m",
    INTERVAL: "300ms",
    EXPORTER_PORT: "0",
  };

  // Step 1: HSDO's server is stopped; its table stays as it last wrote it, and HSDO's clients keep applying it.
  await createHsdoTable(db, HSDO_TABLE);
  await putHsdoItems(db, HSDO_TABLE, ITEMS);
  const frozen = await hsdoItems(db, HSDO_TABLE);
  // Two HAProxy nodes, configured as HSDO's README has it (templates by IP, disabled), both set by "HSDO's client".
  const nodes: HaproxyHandle[] = [];
  for (let i = 0; i < 2; i++) {
    const node = await startHaproxy({ body: [`backend ${BACKEND}`, "    balance roundrobin", `    server-template ${PREFIX} 1-${SIZE} 127.0.0.2:${PORT} disabled`, ""].join("\n") });
    t.after(() => node.stop());
    for (const setting of HSDO_VIEW.values()) for (const c of hsdoCommands(setting)) await node.command(c);
    nodes.push(node);
  }
  const want = expectedView();
  for (const node of nodes) assert.deepEqual(await view(node), want, "HSDO's client left every server at its slot");

  // Step 2: import, dry run then --apply.
  const dry = await runHsdo(["import-hsdo", "--table", HSDO_TABLE], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /dry run: nothing written/);
  const apply = await runHsdo(["import-hsdo", "--table", HSDO_TABLE, "--apply"], env);
  assert.equal(apply.code, 0, apply.stderr);

  // Step 3: start hsdo servers (two: one leads, one stands by) on the same instances.
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  fake.setGroup(
    "web-a",
    [1, 2, 4, 5, 6, 8].map((n) => ({ id: instanceId(n), ip: `10.2.0.${n}`, az: "eu-west-1a", launchTime: Date.UTC(2025, 0, 1, 0, 10 - n) })),
  );
  for (const id of ["hsdo-server-1", "hsdo-server-2"]) {
    const server = startHsdo(id, ["--server"], { ...env, ...fake.env(), HSDO_SERVER_ID: id });
    t.after(() => server.stop("SIGKILL"));
  }
  await waitFor("a server leads and publishes the imported slots", async () => {
    const snap = await readPool(db, TABLE, "default");
    return (snap?.head.leader.startsWith("hsdo-server-") && snap.slots.every((s) => s.state === "free" || s.az === "eu-west-1a")) || undefined;
  });

  // Every node sampled during the switch: a server of any node other than HSDO's slot fails the test.
  const drift: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const [i, node] of nodes.entries()) {
        const v = await view(node).catch(() => undefined);
        for (const name of Object.keys({ ...want, ...v })) if (v && v[name] !== want[name]) drift.push(`node ${i + 1} ${name}: ${v[name]}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const clientEnv = (node: HaproxyHandle, i: number) => ({
    ...env,
    CLIENT_HAPROXY_SOCKET_PATH: node.socket,
    CLIENT_HAPROXY_BACKEND_NAME: BACKEND,
    CLIENT_HAPROXY_BACKEND_BASE_NAME: PREFIX,
    CLIENT_HAPROXY_BACKEND_SERVER_PORT: String(PORT),
    HSDO_CLIENT_CACHE_DIR: join(cache, String(i)),
  });

  // Step 4: switch the clients node by node: stop HSDO's client (here: nothing more is sent), start hsdo --client.
  for (const [i, node] of nodes.entries()) {
    const client = startHsdo(`client-${i + 1}`, ["--client"], clientEnv(node, i));
    t.after(() => client.stop("SIGKILL"));
    await waitFor(`client ${i + 1} read the pool`, () => {
      if (!client.running()) throw new Error(`client ${i + 1} exited: ${client.output()}`);
      return client.output().includes("new snapshot") || undefined;
    });
    // A few ticks to apply (and repair) whatever it would.
    await new Promise((r) => setTimeout(r, 1200));
    assert.deepEqual(await view(node), want, `node ${i + 1} under hsdo: server k is HSDO's slot k`);
  }

  // A node that never ran HSDO (hsdo's own templates, every server parked) converges to exactly what HSDO's client set.
  const fresh = await startHaproxy({ body: templateBackend(BACKEND, PREFIX, SIZE) });
  t.after(() => fresh.stop());
  assert.notDeepEqual(await view(fresh), want);
  const third = startHsdo("client-3", ["--client"], clientEnv(fresh, 3));
  t.after(() => third.stop("SIGKILL"));
  await waitFor("the new node matches HSDO's slots", async () => JSON.stringify(await view(fresh)) === JSON.stringify(want) || undefined);
  // A hand edit is repaired back to HSDO's slot k: the hsdo client really drives the node.
  await nodes[0]!.command(`set server ${BACKEND}/${PREFIX}2 weight 1`);
  await waitFor("node 1's hand edit repaired", async () => (await view(nodes[0]!))[`${PREFIX}2`] === want[`${PREFIX}2`] || undefined);
  await new Promise((r) => setTimeout(r, 1000));

  // Step 5: remove the HSDO table: nothing reads it any more.
  assert.deepEqual(await hsdoItems(db, HSDO_TABLE), frozen, "nothing wrote HSDO's table");
  await db.send(new DeleteTableCommand({ TableName: HSDO_TABLE }));
  await new Promise((r) => setTimeout(r, 1000));
  watching = false;
  await watcher;
  // The one hand edit above is the only departure seen, and only on srv2 of node 1.
  const departures = drift.filter((d) => d !== `node 1 ${PREFIX}2: ready 10.2.0.2:${PORT} w1`);
  assert.deepEqual(departures, [], "no node ever had a server other than HSDO's slot");
  for (const node of [...nodes, fresh]) assert.deepEqual(await view(node), want);
  const status = await runHsdo(["status"], env);
  assert.equal(status.code, 0, status.stderr);
});
