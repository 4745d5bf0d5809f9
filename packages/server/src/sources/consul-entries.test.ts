import { test } from "node:test";
import assert from "node:assert/strict";
import { classifyChecks, instanceId, parseHealthAnswer, type EntryRules } from "./consul-entries.ts";

const rules: EntryRules = { tags: [], passingOnly: true, azMetaKey: "az" };

function entry(node: string, id: string, fields: { addr?: string; svcAddr?: string; port?: number; tags?: string[]; nodeMeta?: object; svcMeta?: object; checks?: string[] } = {}) {
  return {
    Node: { Node: node, Address: fields.addr ?? "10.0.0.1", Meta: fields.nodeMeta ?? {} },
    Service: { ID: id, Service: "web", Address: fields.svcAddr ?? "", Port: fields.port ?? 8080, Tags: fields.tags ?? [], Meta: fields.svcMeta ?? {} },
    Checks: (fields.checks ?? ["passing"]).map((Status) => ({ Status })),
  };
}

test("checks classify: passing ready, critical or unknown leaving, warning depends on passingOnly", () => {
  const checks = (...s: string[]) => s.map((Status) => ({ Status }));
  assert.equal(classifyChecks(checks("passing", "passing"), true), "ready");
  assert.equal(classifyChecks(checks("passing", "critical"), false), "leaving");
  assert.equal(classifyChecks(checks("passing", "maintenance"), false), "leaving");
  assert.equal(classifyChecks(checks("warning", "passing"), true), "leaving");
  assert.equal(classifyChecks(checks("warning", "passing"), false), "ready");
  assert.equal(classifyChecks([], true), "ready");
});

test("instance ids are node:serviceId restricted to [A-Za-z0-9._:-]", () => {
  assert.equal(instanceId("node-1", "web"), "node-1:web");
  assert.equal(instanceId("node 1", "web/v2#a"), "node_1:web_v2_a");
  assert.equal(instanceId("n".repeat(200), "x").length, 128);
});

test("an answer that is not an array, or an entry without node or service id, is refused whole", () => {
  assert.deepEqual(parseHealthAnswer({ error: "x" }, "web", rules), { ok: false, error: 'answer for service "web" is not a JSON array (got object)' });
  const bad = parseHealthAnswer([entry("n1", "web"), { Node: {} }], "web", rules);
  assert.equal(bad.ok, false);
});

test("address, port, AZ and tags are read as documented", () => {
  const parsed = parseHealthAnswer(
    [
      entry("n1", "web", { svcAddr: "10.1.0.1", nodeMeta: { az: "eu-west-1a" }, svcMeta: { az: "ignored" }, tags: ["v2", "prod"] }),
      entry("n2", "web", { addr: "10.0.0.2", svcMeta: { az: "eu-west-1b" }, port: 0, tags: ["v2", "prod", "x"] }),
      entry("n3", "web", { tags: ["v2"] }),
      entry("n4", "web", { svcAddr: "web-4.internal", tags: ["prod", "v2"] }),
    ],
    "web",
    { ...rules, tags: ["prod", "v2"] },
  );
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.instances, [
    { id: "n1:web", addr: "10.1.0.1", port: 8080, service: "web", az: "eu-west-1a", health: "ready" },
    { id: "n2:web", addr: "10.0.0.2", service: "web", az: "eu-west-1b", health: "ready" },
    { id: "n4:web", addr: "", port: 8080, service: "web", az: "", health: "pending" },
  ]);
  assert.equal(parsed.problems.length, 1);
  assert.match(parsed.problems[0] ?? "", /n4\/web: address "web-4.internal" is not an IP address/);
});
