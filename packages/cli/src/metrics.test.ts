import { test } from "node:test";
import assert from "node:assert/strict";
import { OPERATIONS, OUTCOMES } from "@hsdo/store";
import { Metrics } from "./metrics.ts";

test("every DynamoDB operation the store reports is served from the start, at 0", async () => {
  const metrics = new Metrics({ processMetrics: false });
  const text = await metrics.registry.metrics();
  for (const operation of OPERATIONS) {
    for (const outcome of OUTCOMES) {
      assert.ok(text.includes(`hsdo_dynamodb_requests_total{operation="${operation}",outcome="${outcome}"} 0`), `${operation} ${outcome}`);
    }
    assert.ok(text.includes(`hsdo_dynamodb_consumed_capacity_total{operation="${operation}"} 0`), operation);
  }
  metrics.observeDynamo("head.read", "ok", 0.5);
  assert.ok((await metrics.registry.metrics()).includes(`hsdo_dynamodb_consumed_capacity_total{operation="head.read"} 0.5`));
});

test("hsdo_server_weight: HSDO's gauge and labels on the server and the client, a freed slot's series removed", async () => {
  const { recordServerTick, recordClientTick } = await import("./recorders.ts");
  const slot = (n: number, group: string) => ({ slot: n, state: "ready" as const, addr: `10.0.0.${n}`, port: 80, name: `i-${n}`, group, weight: n + 2 });
  const free = { slot: 2, state: "free" as const, weight: 0 };
  const base = { role: "leader" as const, changed: [], published: true, valveHolding: false, live: 2, removing: 0, unassigned: [], released: [] };
  const server = new Metrics({ processMetrics: false });
  recordServerTick(server, "default", "aws", { ...base, slots: [slot(1, "asg-a"), slot(2, "asg-b")] });
  let text = await server.registry.metrics();
  assert.ok(text.includes('hsdo_server_weight{id="1",name="i-1",ip="10.0.0.1",asg="asg-a"} 3'), text);
  assert.ok(text.includes('hsdo_server_weight{id="2",name="i-2",ip="10.0.0.2",asg="asg-b"} 4'), text);
  recordServerTick(server, "default", "aws", { ...base, slots: [slot(1, "asg-a"), free] });
  text = await server.registry.metrics();
  assert.ok(!text.includes('hsdo_server_weight{id="2"'), "the freed slot's series is gone, as HSDO removes it");

  const client = new Metrics({ processMetrics: false });
  recordClientTick(client, { pools: [], durationMs: 1, slots: [slot(1, "asg-a"), slot(2, "asg-b")] });
  assert.ok((await client.registry.metrics()).includes('hsdo_server_weight{id="2",name="i-2",ip="10.0.0.2",asg="asg-b"} 4'));
  recordClientTick(client, { pools: [], durationMs: 1, slots: [slot(1, "asg-a"), free] });
  assert.ok(!(await client.registry.metrics()).includes('hsdo_server_weight{id="2"'));
});

test("the server's and client's labelled counters are served at 0 for their known labels before any event", async () => {
  const metrics = new Metrics({ processMetrics: false });
  metrics.initServer({ pool: "vod", source: "aws" });
  metrics.initClient({ backends: ["origin-dedicated", "origin-fallback"] });
  const text = await metrics.registry.metrics();
  const zero = [
    'hsdo_source_errors_total{source="aws"} 0',
    'hsdo_tick_errors_total{role="server"} 0',
    'hsdo_tick_errors_total{role="client"} 0',
    'hsdo_safety_valve_held_total{pool="vod"} 0',
    'hsdo_publications_total{pool="vod"} 0',
    'hsdo_lifecycle_completions_total{outcome="ok"} 0',
    'hsdo_lifecycle_completions_total{outcome="failed"} 0',
    'hsdo_runtime_api_errors_total{kind="exchange"} 0',
    'hsdo_haproxy_new_process_total 0',
    ...["origin-dedicated", "origin-fallback"].flatMap((backend) => [
      `hsdo_runtime_api_commands_total{backend="${backend}",outcome="ok"} 0`,
      `hsdo_runtime_api_commands_total{backend="${backend}",outcome="failed"} 0`,
      `hsdo_drift_corrections_total{backend="${backend}"} 0`,
    ]),
  ];
  for (const line of zero) assert.ok(text.split("\n").includes(line), `${line} in:\n${text}`);
});
