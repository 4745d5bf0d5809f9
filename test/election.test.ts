import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dynaliteWithTable, startHsdo, freePort, metricValue, rawItems, readLeaseOf, readPool, slotMap, writeTargets, waitFor, type Proc } from "@hsdo/testkit";

const LEASE_MS = 2000;
const INTERVAL_MS = 300;

/** Two `hsdo --server` processes on one table and pool, static source, fast lease. */
async function twoServers(t: import("node:test").TestContext) {
  const { dynalite, db } = await dynaliteWithTable(t, "hsdo");
  const dir = mkdtempSync(join(tmpdir(), "hsdo-election-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "targets.yaml");
  writeTargets(file, [
    { addr: "10.0.0.1", port: 80, name: "a" },
    { addr: "10.0.0.2", port: 80, name: "b" },
  ]);
  const ports = { s1: await freePort(), s2: await freePort() };
  const start = (name: "s1" | "s2"): Proc => {
    const p = startHsdo(name, ["--server"], {
      SERVER_MODE: "static",
      HSDO_SERVER_STATIC_FILE: file,
      HSDO_SERVER_ID: name,
      HSDO_SERVER_LEASE: `${LEASE_MS}ms`,
      HSDO_SERVER_HEARTBEAT: "400ms",
      HSDO_SERVER_DRAIN: "1s",
      INTERVAL: `${INTERVAL_MS}ms`,
      HAPROXY_BACKEND_SERVERS_LIST_SIZE: "4",
      HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_REGION: "us-east-1",
      EXPORTER_PORT: String(ports[name]),
      HSDO_HTTP_HOST: "127.0.0.1",
    });
    t.after(() => p.stop("SIGKILL"));
    return p;
  };
  const metrics = async (name: "s1" | "s2") => (await fetch(`http://127.0.0.1:${ports[name]}/metrics`)).text();
  return { dynalite, db, file, start, metrics };
}

test("two servers: one leader publishes; SIGKILL it and the standby publishes within lease + interval", async (t) => {
  const { db, file, start } = await twoServers(t);
  const s1 = start("s1");
  await waitFor("s1 leads and publishes", async () => (await readPool(db, "hsdo", "default"))?.head.leader === "s1");
  const s2 = start("s2");
  await waitFor("s2 is a standby", () => s2.output().includes("standing by"));
  const before = await readPool(db, "hsdo", "default");
  assert.deepEqual(slotMap(before), { 1: "a:ready", 2: "b:ready" });
  assert.equal(before!.head.leader, "s1");

  s1.signal("SIGKILL");
  await s1.exited;
  const killedAt = Date.now();
  writeTargets(file, [
    { addr: "10.0.0.1", port: 80, name: "a" },
    { addr: "10.0.0.2", port: 80, name: "b" },
    { addr: "10.0.0.3", port: 80, name: "c" },
  ]);
  const after = await waitFor(
    "s2 publishes the new target",
    async () => {
      const snap = await readPool(db, "hsdo", "default");
      return snap?.head.leader === "s2" && slotMap(snap)[3] === "c:ready" ? snap : undefined;
    },
    { timeoutMs: 20_000 },
  );
  const took = Date.now() - killedAt;
  // A standby waits one full lease on an unchanged rvn, then at most a heartbeat and a tick.
  assert.ok(took < LEASE_MS + 3 * INTERVAL_MS + 2000, `takeover took ${took} ms`);
  assert.ok(after.head.epoch > before!.head.epoch, "the new leader's epoch is higher");
  assert.deepEqual(slotMap(after), { 1: "a:ready", 2: "b:ready", 3: "c:ready" }, "survivors kept their slots");
});

test("SIGSTOP the leader past its lease: the other takes over, and after SIGCONT none of the old leader's writes lands", async (t) => {
  const { db, file, start, metrics } = await twoServers(t);
  const s1 = start("s1");
  await waitFor("s1 leads", async () => (await readPool(db, "hsdo", "default"))?.head.leader === "s1");
  const s2 = start("s2");
  await waitFor("s2 is a standby", () => s2.output().includes("standing by"));
  const m1 = await metrics("s1");
  const s1WritesBefore = metricValue(m1, "hsdo_dynamodb_requests_total", { operation: "slot.write", outcome: "ok" });
  const s1HeadWritesBefore = metricValue(m1, "hsdo_dynamodb_requests_total", { operation: "head.write", outcome: "ok" });

  s1.signal("SIGSTOP");
  await waitFor("s2 takes over", async () => (await readLeaseOf(db, "hsdo", "default"))?.owner === "s2", { timeoutMs: 20_000 });
  // The stopped leader's source changes: when it wakes up, it wants to publish.
  writeTargets(file, [{ addr: "10.0.0.9", port: 80, name: "z" }]);
  await waitFor("s2 publishes after the takeover", async () => {
    const snap = await readPool(db, "hsdo", "default");
    return snap?.head.leader === "s2" && snap.head.epoch >= 2;
  });
  s1.signal("SIGCONT");
  await waitFor("s1 notices it lost the lease", () => /lost leadership|stopped publishing/.test(s1.output()), { timeoutMs: 10_000 }).catch((e: Error) => assert.fail(`${e.message}\n${s1.output().slice(-4000)}`));
  // Let the woken leader run several of its ticks.
  const m1b = await waitFor("s1 answers again", async () => metrics("s1"));
  const ticksBefore = metricValue(m1b, "hsdo_tick_duration_seconds_count");
  await waitFor("s1 ran 5 more ticks", async () => metricValue(await metrics("s1"), "hsdo_tick_duration_seconds_count") >= ticksBefore + 5, { timeoutMs: 10_000 });

  const m1c = await metrics("s1");
  assert.equal(metricValue(m1c, "hsdo_dynamodb_requests_total", { operation: "slot.write", outcome: "ok" }), s1WritesBefore, "no slot write of s1 landed after SIGCONT");
  assert.equal(metricValue(m1c, "hsdo_dynamodb_requests_total", { operation: "head.write", outcome: "ok" }), s1HeadWritesBefore, "no head write of s1 landed");
  assert.equal(metricValue(m1c, "hsdo_leader"), 0);
  const items = await rawItems(db, "hsdo", "default");
  const lease = items.find((i) => i.slot === -1)!;
  assert.equal(lease.owner, "s2");
  for (const item of items.filter((i) => (i.slot as number) >= 0)) {
    assert.equal(item.epoch, lease.epoch, `item ${String(item.slot)} carries the new leader's epoch`);
  }
  const head = items.find((i) => i.slot === 0)!;
  assert.equal(head.leader, "s2");
});
