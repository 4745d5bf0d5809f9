// `hsdo import-hsdo` as operators run it (a child process) against HSDO
// tables shaped exactly as HSDO writes them, then `hsdo --server` in AWS mode
// on the imported pool against the fake AWS listing the same instances.
import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { LeaseKeeper } from "@hsdo/store";
import type { HsdoItem, Snapshot } from "@hsdo/core";
import { createTestTable, startDynalite, type DynaliteHandle, runHsdo, startHsdo, type HsdoResult, createHsdoTable, hsdoEnabled, hsdoFree, hsdoItems, putHsdoItems, rawItems, readLeaseOf, readPool, waitFor, instanceId, startFakeAws } from "@hsdo/testkit";

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

const SIZE = 12;
/** Ten enabled slots with two free ones between them: numbering, not packing, is what must survive. */
const ENABLED = [1, 2, 4, 5, 6, 8, 9, 10, 11, 12];
/** HSDO's weights mid-ramp and at max (min 1, max 10, step 1). */
const WEIGHTS = [10, 10, 3, 10, 7, 10, 1, 10, 5, 10];
const ip = (n: number) => `10.1.0.${n}`;

/** The HSDO table of a running HSDO deployment: ten instances (one migrated from v2, no ASG), two "none" placeholders. */
function hsdoTable(): HsdoItem[] {
  const items: HsdoItem[] = [];
  for (let k = 1; k <= SIZE; k++) {
    const i = ENABLED.indexOf(k);
    if (i < 0) items.push(hsdoFree(k));
    else items.push(hsdoEnabled(k, { id: instanceId(100 + k), ip: ip(100 + k), weight: WEIGHTS[i]!, ...(k === 5 ? {} : { asg: "web-a" }) }));
  }
  return items;
}

async function bed(t: TestContext, items: HsdoItem[] = hsdoTable()) {
  const n = ++tables;
  const table = `hsdo-new${n}`;
  const legacy = `hsdo-legacy${n}`;
  await createTestTable(db, table);
  await createHsdoTable(db, legacy);
  await putHsdoItems(db, legacy, items);
  const env: Record<string, string> = {
    HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
    DYNAMODB_TABLE_NAME: table,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
    SERVER_MODE: "aws",
    SERVER_ASG_NAMES: "web-a",
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
    EXPORTER_PORT: "0",
  };
  t.after(() => undefined);
  return { table, legacy, env, pool: () => rawItems(db, table, "default") };
}

function userErrors(r: HsdoResult): string {
  assert.doesNotMatch(r.stderr, /^\s+at .+\(.+:\d+:\d+\)$/m, `no stack trace:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /unexpected error/, r.stderr);
  return r.stderr;
}

/** slot -> "name addr weight group" of the occupied slots. */
function occupied(snap: Snapshot | undefined): Record<number, string> {
  const m: Record<number, string> = {};
  for (const s of snap?.slots ?? []) if (s.state !== "free") m[s.slot] = `${s.state} ${s.name} ${s.addr} w${s.weight}`;
  return m;
}

const expected: Record<number, string> = Object.fromEntries(ENABLED.map((k, i) => [k, `ready ${instanceId(100 + k)} ${ip(100 + k)} w${WEIGHTS[i]}`]));

test("an HSDO table with 10 enabled servers imports to the same 10 slots; a server on the same instances adopts them in place", async (t) => {
  const { env, legacy, table, pool } = await bed(t);
  const hsdoBefore = await hsdoItems(db, legacy);

  // Runbook step 2a: the dry run prints the pool it would write and writes nothing.
  const dry = await runHsdo(["import-hsdo", "--table", legacy], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /12 items \(10 enabled, 2 disabled\)/);
  const rows = dry.stdout.split("\n").filter((l) => /^\d+ +(ready|free)/.test(l));
  assert.equal(rows.length, SIZE, dry.stdout);
  assert.match(rows[0]!, new RegExp(`^1 +ready +10 +${ip(101)} +${instanceId(101)} +web-a$`));
  assert.match(rows[2]!, /^3 +free$/);
  assert.match(rows[4]!, new RegExp(`^5 +ready +10 +${ip(105)} +${instanceId(105)}$`), "the v2 item has no group");
  assert.match(dry.stdout, /dry run: nothing written/);
  assert.deepEqual(await pool(), [], "the dry run wrote nothing to hsdo's table");

  // Runbook step 2b: --apply seeds the pool.
  const applied = await runHsdo(["import-hsdo", "--table", legacy, "--apply"], env);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /imported into pool default: 10 slot items written/);
  const imported = await readPool(db, table, "default");
  assert.deepEqual(occupied(imported), expected, "every enabled BackendServerID k is slot k, same target and weight");
  assert.equal(imported!.slots.find((s) => s.slot === 5)!.group, undefined);
  assert.equal(imported!.slots.find((s) => s.slot === 1)!.group, "web-a");
  assert.ok(imported!.head.leader.startsWith("hsdo-import-hsdo@"));
  const lease = await readLeaseOf(db, table, "default");
  assert.equal(lease?.released, true, "the import released the lease");
  assert.deepEqual(await hsdoItems(db, legacy), hsdoBefore, "HSDO's table is never written");

  // A second import refuses the non-empty pool (exit 2), unless --force.
  const again = await runHsdo(["import-hsdo", "--table", legacy, "--apply"], env);
  assert.equal(again.code, 2);
  assert.match(userErrors(again), /pool default already holds 10 targets .*--force/);

  // Runbook step 3: hsdo servers start, in AWS mode, on the same instances, launched in the reverse order of their slots (a fresh pool would number them the other way round).
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  fake.setGroup(
    "web-a",
    ENABLED.map((k) => ({ id: instanceId(100 + k), ip: ip(100 + k), az: "eu-west-1a", launchTime: Date.UTC(2025, 0, 1, 0, 60 - k) })),
  );
  const server = startHsdo("server", ["--server"], { ...env, ...fake.env(), INTERVAL: "250ms", HSDO_SERVER_ID: "hsdo-server-1" });
  t.after(() => server.stop("SIGKILL"));

  const moves: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const snap = await readPool(db, table, "default").catch(() => undefined);
      for (const s of snap?.slots ?? []) {
        const want = ENABLED.indexOf(s.slot);
        if (want < 0) {
          if (s.state !== "free") moves.push(`slot ${s.slot} took ${s.name}`);
        } else if (s.state !== "ready" || s.name !== instanceId(100 + s.slot) || s.weight < WEIGHTS[want]!) {
          moves.push(`slot ${s.slot}: ${s.state} ${s.name} w${s.weight}`);
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const adopted = await waitFor("the server publishes the imported slots with its own targets", async () => {
    const snap = await readPool(db, table, "default");
    return snap?.head.leader === "hsdo-server-1" && snap.slots.every((s) => s.state === "free" || s.az === "eu-west-1a") ? snap : undefined;
  });
  // A few more ticks: nothing moves later either.
  await new Promise((r) => setTimeout(r, 1500));
  watching = false;
  await watcher;
  assert.deepEqual(moves, [], "no slot ever held another target, and no weight went down");
  const final = await readPool(db, table, "default");
  assert.deepEqual(occupied(final), expected, "the same 10 slot numbers, targets and weights");
  assert.ok(adopted.head.epoch > imported!.head.epoch, "the server leads with a higher epoch");
  for (const s of final!.slots.filter((x) => x.state === "ready")) assert.equal(s.group, "web-a", `slot ${s.slot} gets its group from the source`);
  assert.deepEqual(await hsdoItems(db, legacy), hsdoBefore);
});

test("every item hsdo cannot map exits 2 with the item named, and nothing is written", async (t) => {
  const v2 = hsdoEnabled(2, { id: instanceId(2), ip: ip(2), weight: 10 });
  const missing = hsdoEnabled(3, { id: instanceId(3), ip: ip(3), asg: "web-a", weight: 10 });
  delete missing.LastWeightUpdate;
  const cases: [string, HsdoItem[], RegExp][] = [
    [
      "same ServerName in two slots",
      [hsdoEnabled(1, { id: instanceId(1), ip: ip(1), asg: "web-a", weight: 10 }), hsdoEnabled(2, { id: instanceId(1), ip: ip(2), asg: "web-a", weight: 10 }), hsdoFree(3)],
      /BackendServerID 1: ServerName "i-0+1" is also in BackendServerID 2: one target in two slots/,
    ],
    [
      "same IPAddress in two slots",
      [hsdoEnabled(1, { id: instanceId(1), ip: ip(7), asg: "web-a", weight: 10 }), hsdoEnabled(4, { id: instanceId(4), ip: ip(7), asg: "web-a", weight: 10 })],
      /BackendServerID 4: IPAddress "10\.1\.0\.7" is also in BackendServerID 1/,
    ],
    ["a slot above size", [hsdoFree(1), hsdoEnabled(13, { id: instanceId(13), ip: ip(13), asg: "web-a", weight: 10 })], /BackendServerID 13: BackendServerID 13 is above size 12/],
    ["an address that does not validate", [hsdoEnabled(1, { id: instanceId(1), ip: "10.1.0.256", asg: "web-a", weight: 10 })], /BackendServerID 1: IPAddress: addr "10\.1\.0\.256" is not an IP address/],
    ["an address never a target", [hsdoEnabled(6, { id: instanceId(6), ip: "169.254.169.254", asg: "web-a", weight: 10 })], /BackendServerID 6: IPAddress: addr 169\.254\.169\.254 is link-local/],
    ["a missing field", [v2, missing], /BackendServerID 3: LastWeightUpdate is missing/],
  ];
  for (const [what, items, message] of cases) {
    const { env, legacy, pool } = await bed(t, items);
    const r = await runHsdo(["import-hsdo", "--table", legacy, "--apply"], env);
    assert.equal(r.code, 2, `${what}: exit 2\n${r.stdout}\n${r.stderr}`);
    assert.match(userErrors(r), message, what);
    assert.match(r.stderr, /cannot be mapped; nothing written/, what);
    if (items.includes(v2)) assert.doesNotMatch(r.stderr, /BackendServerID 2:/, `${what}: the v2 item without ASG is not a problem`);
    assert.deepEqual(await pool(), [], `${what}: nothing written to hsdo's pool`);
  }
});

test("a table that is not HSDO's, or missing, exits 2 before anything is read into the pool", async (t) => {
  const { env, table, pool } = await bed(t);
  const own = await runHsdo(["import-hsdo", "--table", table], env);
  assert.equal(own.code, 2);
  assert.match(userErrors(own), /is hsdo's own table/);
  await createTestTable(db, "not-hsdo");
  const foreign = await runHsdo(["import-hsdo", "--table", "not-hsdo"], env);
  assert.equal(foreign.code, 2);
  assert.match(userErrors(foreign), /not-hsdo is not an HSDO table: its key is pool \(HASH, S\), slot \(RANGE, N\)/);
  const none = await runHsdo(["import-hsdo", "--table", "no-such-table"], env);
  assert.equal(none.code, 2);
  assert.match(userErrors(none), /table no-such-table not found/);
  const consul = await runHsdo(["import-hsdo", "--table", "x"], { ...env, SERVER_MODE: "consul" });
  assert.equal(consul.code, 2);
  assert.match(userErrors(consul), /server\.mode is consul/);
  assert.deepEqual(await pool(), []);
});

test("--apply refuses while a server leads the pool (its lease is renewed), and writes nothing", async (t) => {
  const { env, legacy, table, pool } = await bed(t);
  const keeper = new LeaseKeeper({ client: db, table, pool: "default", owner: "live-server", leaseMs: 2000 });
  assert.equal((await keeper.tick()).role, "leader");
  const timer = setInterval(() => void keeper.tick().catch(() => undefined), 200);
  t.after(() => {
    clearInterval(timer);
    keeper.stop();
  });
  const r = await runHsdo(["import-hsdo", "--table", legacy, "--apply"], { ...env, HSDO_SERVER_LEASE: "2s", HSDO_SERVER_HEARTBEAT: "500ms" });
  assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /lease is held by live-server/);
  assert.match(userErrors(r), /a server leads pool default \(lease owner live-server.*stop every hsdo --server/);
  const items = await pool();
  assert.deepEqual(
    items.map((i) => [i.slot, i.owner]),
    [[-1, "live-server"]],
    "only the live server's lease item, still its own; no head, no slot",
  );
});

test("--force replaces a pool that holds targets; slots HSDO leaves free become free", async (t) => {
  const { env, legacy, table } = await bed(t);
  const first = await runHsdo(["import-hsdo", "--table", legacy, "--apply"], env);
  assert.equal(first.code, 0, first.stderr);
  // HSDO's table of another moment: slot 1 freed, slot 3 taken.
  await putHsdoItems(db, legacy, [hsdoFree(1), hsdoEnabled(3, { id: instanceId(203), ip: ip(203), asg: "web-a", weight: 4 })]);
  const dry = await runHsdo(["import-hsdo", "--table", legacy, "--force"], env);
  assert.equal(dry.code, 0, dry.stderr);
  const r = await runHsdo(["import-hsdo", "--table", legacy, "--apply", "--force"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /imported into pool default: \d+ slot items written/);
  const m = occupied(await readPool(db, table, "default"));
  assert.equal(m[1], undefined);
  assert.equal(m[3], `ready ${instanceId(203)} ${ip(203)} w4`);
  assert.equal(m[2], expected[2]);
});
