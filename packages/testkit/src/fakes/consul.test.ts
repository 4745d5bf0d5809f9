import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import Consul from "consul";
import { parseGoDuration, startFakeConsul } from "./consul.ts";

/** The consul package answers [res, body] when its ctx asks for the response (the typings do not say so). */
async function healthService(consul: Consul, options: Record<string, unknown>): Promise<{ index: string; body: unknown }> {
  const call = consul.health.service.bind(consul.health) as unknown as (o: Record<string, unknown>) => Promise<[{ headers: Record<string, string> }, unknown]>;
  const [res, body] = await call({ ...options, ctx: Object.assign(new EventEmitter(), { includeResponse: true }) });
  return { index: res.headers["x-consul-index"] ?? "", body };
}

test("a blocking query with the current index is held for `wait`, then answers the same index", async (t) => {
  const fake = await startFakeConsul();
  t.after(() => fake.stop());
  const consul = new Consul({ host: "127.0.0.1", port: fake.port });
  t.after(() => consul.destroy());
  fake.register({ service: "web", node: "n1", address: "10.0.0.1", port: 80 });
  const first = await healthService(consul, { service: "web" });
  const started = Date.now();
  const second = await healthService(consul, { service: "web", index: first.index, wait: "300ms" });
  const held = Date.now() - started;
  assert.equal(second.index, first.index);
  assert.ok(held >= 280 && held < 2_000, `held ${held} ms`);
  assert.equal(fake.requests[1]?.heldMs !== undefined && fake.requests[1].heldMs >= 280, true);
});

test("entries are shaped like Consul's; passing and tag filter on the server side", async (t) => {
  const fake = await startFakeConsul();
  t.after(() => fake.stop());
  const consul = new Consul({ host: "127.0.0.1", port: fake.port });
  t.after(() => consul.destroy());
  fake.register({ service: "web", node: "n1", address: "10.0.0.1", port: 80, tags: ["a"], nodeMeta: { az: "z1" } });
  fake.register({ service: "web", node: "n2", address: "10.0.0.2", port: 80, tags: ["a", "b"], status: "critical" });
  const all = (await healthService(consul, { service: "web" })).body as Array<{ Node: { Node: string; Meta: object }; Service: { ID: string; Port: number }; Checks: { CheckID: string; Status: string }[] }>;
  assert.deepEqual(all.map((e) => [e.Node.Node, e.Service.ID, e.Service.Port, e.Checks.map((c) => `${c.CheckID}=${c.Status}`)]), [
    ["n1", "web", 80, ["serfHealth=passing", "service:web=passing"]],
    ["n2", "web", 80, ["serfHealth=passing", "service:web=critical"]],
  ]);
  assert.deepEqual(all[0]?.Node.Meta, { az: "z1" });
  const passing = (await healthService(consul, { service: "web", passing: true })).body as unknown[];
  assert.equal(passing.length, 1);
  const tagged = (await healthService(consul, { service: "web", tag: "b" })).body as unknown[];
  assert.equal(tagged.length, 1);
  assert.equal(await consul.status.leader(), "127.0.0.1:8300");
  assert.deepEqual(fake.protocolErrors, []);
});

test("Go durations parse as Consul reads the wait parameter", () => {
  assert.equal(parseGoDuration("30s"), 30_000);
  assert.equal(parseGoDuration("1m30s"), 90_000);
  assert.equal(parseGoDuration("250ms"), 250);
  assert.equal(parseGoDuration("30"), undefined);
});
