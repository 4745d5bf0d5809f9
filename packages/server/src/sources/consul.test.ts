import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, SourceError, type ConsulSourceConfig, type Target } from "@hsdo/core";
import { startFakeConsul, type FakeConsul, type FakeConsulRegistration, waitFor } from "@hsdo/testkit";
import { ConsulSource } from "./consul.ts";
import { backoffPolicy } from "./retry.ts";

interface Bed {
  fake: FakeConsul;
  source: ConsulSource;
  clock: ManualClock;
}

async function bed(t: TestContext, patch: Partial<ConsulSourceConfig> = {}, regs: FakeConsulRegistration[] = []): Promise<Bed> {
  const fake = await startFakeConsul();
  t.after(() => fake.stop());
  for (const r of regs) fake.register(r);
  const clock = new ManualClock();
  const config: ConsulSourceConfig = {
    url: fake.url,
    services: ["web"],
    tags: [],
    passingOnly: true,
    azMetaKey: "az",
    waitMs: 30_000,
    token: "",
    datacenter: "",
    ...patch,
  };
  const source = new ConsulSource(config, {
    clock,
    retry: backoffPolicy({ maxAttempts: Number.POSITIVE_INFINITY, baseMs: 10, maxMs: 20 }),
    maxFailureMs: 0,
    firstAnswerTimeoutMs: 5_000,
  });
  t.after(() => source.close());
  t.after(() => assert.deepEqual(fake.protocolErrors, [], "the consul package's requests were all well-formed"));
  return { fake, source, clock };
}

const web = (n: number, patch: Partial<FakeConsulRegistration> = {}): FakeConsulRegistration => ({
  service: "web",
  node: `node-${n}`,
  address: `10.0.0.${n}`,
  port: 8080,
  nodeMeta: { az: n % 2 ? "eu-west-1a" : "eu-west-1b" },
  ...patch,
});

const ids = (targets: Target[]) => targets.map((x) => x.id);

test("lists every instance of the service, shaped as targets", async (t) => {
  const { source, clock } = await bed(t, { services: ["web", "api"] }, [
    web(1),
    web(2, { serviceAddress: "10.9.0.2", nodeMeta: {}, serviceMeta: { az: "eu-west-1c" } }),
    { service: "api", node: "node-1", address: "10.0.0.1", id: "api-1", port: 9000 },
  ]);
  const targets = await source.list();
  assert.deepEqual(targets, [
    { id: "node-1:api-1", addr: "10.0.0.1", port: 9000, group: "api", az: "", launchedAt: clock.now(), health: "ready" },
    { id: "node-1:web", addr: "10.0.0.1", port: 8080, group: "web", az: "eu-west-1a", launchedAt: clock.now(), health: "ready" },
    { id: "node-2:web", addr: "10.9.0.2", port: 8080, group: "web", az: "eu-west-1c", launchedAt: clock.now(), health: "ready" },
  ]);
});

test("a blocking query returns on change: a new instance appears promptly, without polling", async (t) => {
  const { fake, source, clock } = await bed(t, {}, [web(1)]);
  assert.deepEqual(ids(await source.list()), ["node-1:web"]);
  await waitFor("the watcher to block", () => fake.blocked() === 1);
  const before = fake.count("web");
  const held = fake.requests.at(-1);
  assert.deepEqual([held?.query.index, held?.query.wait], [[String(fake.index())], ["30000ms"]]);

  clock.advance(1000);
  const registeredAt = Date.now();
  fake.register(web(2));
  const targets = await waitFor("node-2 to be listed", async () => {
    const list = await source.list();
    return list.length === 2 ? list : undefined;
  }, { timeoutMs: 3_000, intervalMs: 20 });
  assert.ok(Date.now() - registeredAt < 3_000);
  assert.deepEqual(ids(targets), ["node-1:web", "node-2:web"], "first seen first");
  assert.equal(targets[1]?.launchedAt, clock.now());
  await waitFor("the watcher to block again", () => fake.blocked() === 1);
  assert.equal(fake.count("web") - before, 1, "one request answered the change, then the watcher blocked again");

  fake.deregister("node-1", "web");
  await waitFor("node-1 to be gone", async () => ids(await source.list()).join() === "node-2:web", { timeoutMs: 3_000, intervalMs: 20 });
});

test("critical checks leave; warning leaves only when passingOnly", async (t) => {
  const regs = [web(1), web(2, { status: "critical" }), web(3, { status: "warning" }), web(4)];
  const strict = await bed(t, {}, regs);
  strict.fake.setNodeCheck("node-4", "critical");
  const health = (list: Target[]) => list.map((x) => `${x.id}=${x.health}`);
  assert.deepEqual(health(await strict.source.list()), ["node-1:web=ready", "node-2:web=leaving", "node-3:web=leaving", "node-4:web=leaving"]);
  const lenient = await bed(t, { passingOnly: false }, regs);
  assert.deepEqual(health(await lenient.source.list()), ["node-1:web=ready", "node-2:web=leaving", "node-3:web=ready", "node-4:web=ready"]);

  // A check turning critical reaches a list promptly, through the blocking query.
  await waitFor("blocked", () => strict.fake.blocked() === 1);
  strict.fake.setCheck("node-1", "web", "critical");
  await waitFor("node-1 to leave", async () => (await strict.source.list())[0]?.health === "leaving", { timeoutMs: 3_000, intervalMs: 20 });
});

test("tag filter: only instances carrying every configured tag", async (t) => {
  const { fake, source } = await bed(t, { tags: ["prod", "v2"] }, [
    web(1, { tags: ["prod", "v2"] }),
    web(2, { tags: ["prod"] }),
    web(3, { tags: ["v2", "canary", "prod"] }),
    web(4, { tags: ["v2"] }),
  ]);
  assert.deepEqual(ids(await source.list()), ["node-1:web", "node-3:web"]);
  assert.deepEqual(fake.requests[0]?.query.tag, ["prod"]);
});

test("AZ comes from the node meta key, then the service meta key", async (t) => {
  const { source } = await bed(t, { azMetaKey: "zone" }, [
    web(1, { nodeMeta: { zone: "eu-west-1a" }, serviceMeta: { zone: "eu-west-1b" } }),
    web(2, { nodeMeta: {}, serviceMeta: { zone: "eu-west-1b" } }),
    web(3, { nodeMeta: { az: "eu-west-1c" } }),
  ]);
  assert.deepEqual((await source.list()).map((x) => x.az), ["eu-west-1a", "eu-west-1b", ""]);
});

test("errors: no first answer and a failing watcher throw SourceError; recovery lists again", async (t) => {
  const { fake, source } = await bed(t, {}, [web(1)]);
  fake.fail(3);
  await assert.rejects(source.list(), (err: unknown) => {
    assert.ok(err instanceof SourceError);
    assert.match(err.message, /^consul: service "web" at http:\/\/127\.0\.0\.1:\d+: no answer yet: .*\(HTTP 500\)$/);
    return true;
  });
  const first = await waitFor("recovery", async () => {
    try {
      return await source.list();
    } catch {
      return undefined;
    }
  });
  assert.deepEqual(ids(first), ["node-1:web"]);

  await waitFor("blocked", () => fake.blocked() === 1);
  fake.fail(1_000);
  fake.register(web(2)); // wakes the blocking query; the next request meets the faults
  await waitFor("the failure to show", async () => {
    try {
      await source.list();
      return false;
    } catch (err) {
      return err instanceof SourceError && /failing for \d+ ms: .*HTTP 500/.test(err.message);
    }
  });
  fake.heal();
  const healed = await waitFor("recovery after the failure", async () => {
    try {
      return await source.list();
    } catch {
      return undefined;
    }
  });
  assert.deepEqual(ids(healed), ["node-1:web", "node-2:web"]);
});

test("the index going backwards resets it to 0, then blocking resumes at the new index", async (t) => {
  const { fake, source } = await bed(t, {}, [web(1)]);
  await source.list();
  await waitFor("blocked", () => fake.blocked() === 1);
  const high = fake.index();
  const from = fake.requests.length;
  fake.setIndex(3);
  await waitFor("blocked at the new index", () => fake.blocked() === 1 && fake.requests.at(-1)?.query.index?.[0] === "3");
  const after = fake.requests.slice(from).map((r) => r.query.index?.[0] ?? "none");
  assert.deepEqual(after.slice(-2), ["none", "3"], `asked with no index after the reset (index was ${high})`);
  fake.register(web(2));
  await waitFor("changes seen after the reset", async () => (await source.list()).length === 2, { timeoutMs: 3_000, intervalMs: 20 });
});

test("token and datacenter are sent", async (t) => {
  const { fake, source } = await bed(t, { token: "s3cret", datacenter: "dc1" }, [web(1)]);
  fake.requireToken("s3cret");
  assert.equal((await source.list()).length, 1);
  assert.deepEqual([fake.requests[0]?.token, fake.requests[0]?.query.dc], ["s3cret", ["dc1"]]);
});

test("an answer with X-Consul-Index 0 (a Consul bug) is still taken, and blocking goes on at index 1", async (t) => {
  const { fake, source } = await bed(t, {}, [web(1)]);
  fake.setIndex(0);
  assert.deepEqual(ids(await source.list()), ["node-1:web"]);
  fake.setIndex(7);
  fake.register(web(2));
  await waitFor("the change after index 0", async () => (await source.list()).length === 2);
});
