// `hsdo --server` in Consul mode, as HSDO's variables configure it, against
// the wire-level fake of Consul's health API (blocking queries).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startFakeConsul, dynaliteWithTable, runHsdo, startHsdo, freePort, readPool, waitFor } from "@hsdo/testkit";

test("Consul mode: passing instances fill slots with their AZ; a critical one drains in its slot, then its slot is freed", async (t) => {
  const { dynalite, db } = await dynaliteWithTable(t, "hsdo");
  const consul = await startFakeConsul();
  t.after(() => consul.stop());
  const reg = (n: number, az: string) =>
    consul.register({ service: "origin", node: `node-${n}`, address: `10.1.0.${n}`, port: 8080, nodeMeta: { az }, tags: ["vod"], status: "passing" });
  reg(1, "eu-west-3a");
  reg(2, "eu-west-3b");
  consul.register({ service: "origin", node: "node-9", address: "10.1.0.9", port: 8080, tags: ["other"], status: "passing" });

  const server = startHsdo("server", ["--server"], {
    SERVER_MODE: "consul",
    SERVER_CONSUL_API_URL: consul.url,
    SERVER_CONSUL_SERVICE_NAME: "origin",
    HSDO_SERVER_CONSUL_TAGS: "vod",
    HSDO_SERVER_CONSUL_WAIT: "2s",
    HSDO_SERVER_DRAIN: "1s",
    HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
    INTERVAL: "300ms",
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: "4",
    EXPORTER_PORT: String(await freePort()),
  });
  t.after(() => server.stop());
  const slots = async () => (await readPool(db, "hsdo", "default"))?.slots ?? [];
  const fail = () => server.output().slice(-3000);

  const first = await waitFor("both tagged instances in slots", async () => {
    const s = await slots();
    return s.filter((x) => x.state === "ready").length === 2 ? s : undefined;
  }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  assert.deepEqual(
    first.filter((x) => x.state === "ready").map((x) => [x.slot, x.addr, x.port, x.az, x.group]).sort(),
    [
      [1, "10.1.0.1", 8080, "eu-west-3a", "origin"],
      [2, "10.1.0.2", 8080, "eu-west-3b", "origin"],
    ],
    "the instance without the tag is left out",
  );

  consul.setCheck("node-1", "origin", "critical");
  await waitFor("node-1 drains in slot 1", async () => (await slots())[0]?.state === "drain");
  await waitFor("slot 1 is freed after the drain", async () => (await slots())[0]?.state === "free");
  const after = await slots();
  assert.equal(after[1]?.addr, "10.1.0.2", "the other instance kept slot 2");
  assert.deepEqual(consul.protocolErrors, []);
});

test("Consul mode: an instance registered at 169.254.169.254 is never published, even with HSDO_ALLOW_LOOPBACK", async (t) => {
  const { dynalite, db } = await dynaliteWithTable(t, "hsdo");
  const consul = await startFakeConsul();
  t.after(() => consul.stop());
  consul.register({ service: "origin", node: "node-1", address: "10.1.0.1", port: 8080, status: "passing" });
  // The node is fine; the service registration names the metadata service (a typo, or worse).
  consul.register({ service: "origin", node: "node-2", address: "10.1.0.2", serviceAddress: "169.254.169.254", port: 8080, status: "passing" });
  consul.register({ service: "origin", node: "node-3", address: "127.0.0.3", port: 8080, status: "passing" });
  const env = {
    SERVER_MODE: "consul",
    SERVER_CONSUL_API_URL: consul.url,
    SERVER_CONSUL_SERVICE_NAME: "origin",
    HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: "4",
    EXPORTER_PORT: "0",
  };
  const off = await runHsdo(["--server", "--once"], env);
  assert.equal(off.code, 0, off.stderr);
  const addrs = async () => ((await readPool(db, "hsdo", "default"))?.slots ?? []).filter((s) => s.state !== "free").map((s) => s.addr);
  assert.deepEqual(await addrs(), ["10.1.0.1"]);
  assert.match(off.stderr, /target kept out: it cannot be published.*169\.254\.169\.254 is link-local/);

  const on = await runHsdo(["--server", "--once"], { ...env, HSDO_ALLOW_LOOPBACK: "yes" });
  assert.equal(on.code, 0, on.stderr);
  assert.deepEqual(await addrs(), ["10.1.0.1", "127.0.0.3"], "loopback allowed, link-local never");
  assert.deepEqual(consul.protocolErrors, []);
});

test("Consul mode: the token loses service:read ([] with HTTP 200), the valve lets the empty answer through after confirmTicks, and on recovery every instance gets its old slot back", async (t) => {
  const { dynalite, db } = await dynaliteWithTable(t, "hsdo");
  const consul = await startFakeConsul();
  t.after(() => consul.stop());
  // Registered out of node order, so the slots are not simply sorted by name.
  for (const n of [3, 1, 4, 2]) consul.register({ service: "origin", node: `node-${n}`, address: `10.1.0.${n}`, port: 8080, status: "passing" });
  const server = startHsdo("server", ["--server"], {
    SERVER_MODE: "consul",
    SERVER_CONSUL_API_URL: consul.url,
    SERVER_CONSUL_SERVICE_NAME: "origin",
    HSDO_SERVER_CONSUL_WAIT: "2s",
    HSDO_SERVER_CONFIRM_TICKS: "2",
    HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
    INTERVAL: "300ms",
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: "6",
    EXPORTER_PORT: String(await freePort()),
  });
  t.after(() => server.stop());
  const slots = async () => (await readPool(db, "hsdo", "default"))?.slots ?? [];
  const where = (s: Awaited<ReturnType<typeof slots>>) => Object.fromEntries(s.filter((x) => x.state === "ready").map((x) => [x.addr, x.slot]));
  const fail = () => server.output().slice(-3000);

  const before = await waitFor("four instances in slots", async () => {
    const s = await slots();
    return s.filter((x) => x.state === "ready").length === 4 ? where(s) : undefined;
  }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));

  consul.filterByAcl(true);
  const emptied = await waitFor("the confirmed empty answer frees every slot, each remembering its target", async () => {
    const s = await slots();
    return s.every((x) => x.state === "free") ? s : undefined;
  }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  assert.ok(server.output().includes("safety valve"), "the empty answer was held first");
  assert.deepEqual(emptied.filter((x) => x.last).length, 4, JSON.stringify(emptied));

  // Recovery, with a newcomer registered meanwhile: the four get their slots back, the newcomer another one.
  consul.register({ service: "origin", node: "node-0", address: "10.1.0.100", port: 8080, status: "passing" });
  consul.filterByAcl(false);
  const after = await waitFor("all five ready", async () => {
    const s = await slots();
    return s.filter((x) => x.state === "ready").length === 5 ? where(s) : undefined;
  }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  for (const [addr, slot] of Object.entries(before)) assert.equal(after[addr], slot, `${addr} is back in slot ${slot}`);
  assert.equal(after["10.1.0.100"], 5, "the newcomer took the lowest free slot");
  assert.deepEqual(consul.protocolErrors, []);
});
