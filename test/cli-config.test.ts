import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { SCHEMA, resolveConfig } from "@hsdo/core";
import { ROOT, runHsdo } from "@hsdo/testkit";
import { configTable, configYaml, END, METRICS_END, METRICS_START, metricsTable, START } from "../scripts/config-doc.ts";

test("hsdo --help lists every command of the design", async () => {
  const r = await runHsdo(["--help"]);
  assert.equal(r.code, 0, r.stderr);
  for (const cmd of ["hsdo status", "hsdo table", "hsdo config", "hsdo haproxy-config", "--server", "--client", "--dry-run", "--once", "--config", "--debug"]) {
    assert.ok(r.stdout.includes(cmd), `--help mentions ${cmd}`);
  }
});

test("hsdo config prints the effective configuration with the source of each value", async () => {
  const r = await runHsdo(["config"], { SERVER_ASG_NAMES: "a,b", HAPROXY_BACKEND_SERVERS_LIST_SIZE: "20" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^server\.aws\.asgNames\s+\["a","b"\]\s+\(env SERVER_ASG_NAMES\)$/m);
  assert.match(r.stdout, /^size\s+20\s+\(env HAPROXY_BACKEND_SERVERS_LIST_SIZE\)$/m);
  assert.match(r.stdout, /^pool\s+default\s+\(default\)$/m);
});

test("hsdo config shows allowLoopback: off by default, on from HSDO_ALLOW_LOOPBACK", async () => {
  const [off, on, bad] = await Promise.all([
    runHsdo(["config"]),
    runHsdo(["config"], { HSDO_ALLOW_LOOPBACK: "true" }),
    runHsdo(["config"], { HSDO_ALLOW_LOOPBACK: "169.254.169.254" }),
  ]);
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stdout, /^allowLoopback\s+false\s+\(default\)$/m);
  assert.equal(on.code, 0, on.stderr);
  assert.match(on.stdout, /^allowLoopback\s+true\s+\(env HSDO_ALLOW_LOOPBACK\)$/m);
  assert.notEqual(bad.code, 0, "a switch, not a list of addresses");
  assert.match(bad.stderr, /HSDO_ALLOW_LOOPBACK: "169\.254\.169\.254" is not valid \(expected true or false\)/);
});

test("hsdo config --json reads a file and flags; flags win", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-cfg-"));
  writeFileSync(join(dir, "h.yaml"), "size: 12\npool: filepool\n");
  const r = await runHsdo(["config", "--json", "--config", join(dir, "h.yaml"), "--pool", "flagpool", "--set", "server.drain=2m"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { key: string; value: unknown; source: string }[];
  const row = (k: string) => rows.find((x) => x.key === k)!;
  assert.deepEqual([row("size").value, row("size").source], [12, `file ${join(dir, "h.yaml")}`]);
  assert.deepEqual([row("pool").value, row("pool").source], ["flagpool", "flag --pool"]);
  assert.deepEqual([row("server.drain").value, row("server.drain").source], ["2m", "flag --set server.drain"]);
});

test("conf/hsdo.yaml in the working directory is read by default", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-cwd-"));
  mkdirSync(join(dir, "conf"));
  writeFileSync(join(dir, "conf/hsdo.yaml"), "interval: 7s\n");
  const r = await runHsdo(["config"], {}, { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^interval\s+7s\s+\(file conf\/hsdo\.yaml\)$/m);
});

test("secrets are hidden in hsdo config", async () => {
  const r = await runHsdo(["config"], { CONSUL_HTTP_TOKEN: "s3cr3t-token" });
  assert.equal(r.code, 0);
  assert.ok(!r.stdout.includes("s3cr3t-token"));
  assert.match(r.stdout, /server\.consul\.token\s+\(hidden\)/);
});

const bad: [string, string[], Record<string, string>, RegExp][] = [
  ["not an integer", ["config"], { HAPROXY_BACKEND_SERVERS_LIST_SIZE: "abc" }, /^hsdo: HAPROXY_BACKEND_SERVERS_LIST_SIZE: "abc" is not valid \(expected an integer in 1\.\.5000\)\n$/],
  ["not a boolean", ["config"], { CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND: "yes please", CLIENT_HAPROXY_FALLBACK_BACKEND_NAME: "fb" }, /CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND: "yes please" is not valid \(expected true or false\)/],
  ["not a duration", ["config"], { SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL: "half a minute" }, /SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL: "half a minute" .*duration/],
  ["not a mode", ["config"], { SERVER_MODE: "k8s" }, /SERVER_MODE: "k8s" .*one of aws, consul, static/],
  ["port out of range", ["config"], { EXPORTER_PORT: "70000" }, /EXPORTER_PORT: "70000" .*0\.\.65535/],
  ["weight out of range", ["config"], { SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT: "300" }, /SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT: "300" .*1\.\.256/],
  ["--server without ASG names", ["config", "--server"], {}, /server\.aws\.asgNames \(SERVER_ASG_NAMES\): \[\] is required when server\.mode is aws/],
  ["--server consul without a service", ["config", "--server"], { SERVER_MODE: "consul" }, /SERVER_CONSUL_SERVICE_NAME.* is required when server\.mode is consul/],
  ["dedicated without identity", ["config", "--client"], { CLIENT_DEDICATED_ASG: "true" }, /select: "dedicated" needs this node's groups or AZ/],
  ["interval above client.maxSnapshotAge", ["config", "--client"], { INTERVAL: "90", HSDO_CLIENT_MAX_SNAPSHOT_AGE: "1m" }, /^hsdo: INTERVAL \(interval\): "90s" is above client\.maxSnapshotAge \(1m\): the client reads the table once an interval.*raise client\.maxSnapshotAge/],
  ["bad --log-level", ["config", "--log-level", "loud"], {}, /^hsdo: --log-level: "loud" is not valid \(expected one of debug, info, warn, error\)\n$/],
  ["bad HSDO_LOG_LEVEL", ["config"], { HSDO_LOG_LEVEL: "verbose" }, /^hsdo: HSDO_LOG_LEVEL: "verbose" is not valid \(expected one of debug, info, warn, error\)\n$/],
  ["missing config file", ["config", "--config", "/nonexistent/hsdo.yaml"], {}, /--config: "\/nonexistent\/hsdo\.yaml" cannot be read/],
  ["bad --set", ["config", "--set", "size"], {}, /--set: "size" is not key=value/],
  ["unknown variable", ["config"], { HSDO_SERVER_WIEGHT_MAX: "3" }, /HSDO_SERVER_WIEGHT_MAX: "3" is not a known variable/],
  ["unknown flag", ["config", "--sever"], {}, /Unknown argument: sever/],
  ["portless backend of an AWS pool", ["config", "--client"], { SERVER_ASG_NAMES: "web", HSDO_CLIENT_BACKENDS: '[{"name": "be_app"}]' }, /^hsdo: client\.backends\[0\]\.port: \(unset\) must be set for backend be_app \(set by HSDO_CLIENT_BACKENDS\).*`"port": 8080` in its JSON object.*`server\.aws\.port: 8080`/],
  ["bad backends JSON", ["config"], { HSDO_CLIENT_BACKENDS: '[{"name": "be", "select": "nearest"}]' }, /HSDO_CLIENT_BACKENDS\[0\]\.select: "nearest" is not a selection/],
];

for (const [what, args, env, message] of bad) {
  test(`bad input exits 2 with one line naming it: ${what}`, async () => {
    const r = await runHsdo(args, env);
    assert.equal(r.code, 2, `exit status (stderr: ${r.stderr})`);
    assert.match(r.stderr, message);
    assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
  });
}

test("a bad file names the key and the file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-bad-"));
  writeFileSync(join(dir, "h.yaml"), "server:\n  wieght:\n    max: 3\n");
  const r = await runHsdo(["config", "--config", join(dir, "h.yaml")]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /server\.wieght: \{"max":3\} is not a known key in .*h\.yaml/);
});

test("hsdo config --client refuses a portless backend when the file says the AWS targets carry no port", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-port-"));
  const file = join(dir, "h.yaml");
  writeFileSync(file, "server:\n  mode: aws\n  aws:\n    asgNames: [web]\nclient:\n  backends:\n    - name: be_app\n      prefix: app\n");
  const r = await runHsdo(["config", "--client", "--config", file]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^hsdo: client\.backends\[0\]\.port: \(unset\) must be set for backend be_app \(in .*h\.yaml\)/);
  assert.match(r.stderr, /add the port the instances listen on to that backend \(`port: 8080` under its `- name:` line\), or set `server\.aws\.port: 8080`/);
  assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
  // The same file with the port given passes.
  writeFileSync(file, "server:\n  mode: aws\n  aws:\n    asgNames: [web]\n    port: 8080\nclient:\n  backends:\n    - name: be_app\n      prefix: app\n");
  const ok = await runHsdo(["config", "--client", "--config", file]);
  assert.equal(ok.code, 0, ok.stderr);
});

test("the README's metrics table lists every metric of the registry", async () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  assert.ok(readme.includes(`${METRICS_START}\n${await metricsTable()}\n${METRICS_END}`), "run: node --import tsx scripts/config-doc.ts");
});

test("conf/hsdo.yaml and the README's table document every key and are current", () => {
  const text = readFileSync(join(ROOT, "conf/hsdo.yaml"), "utf8");
  assert.equal(text, configYaml(), "run: node --import tsx scripts/config-doc.ts");
  for (const spec of SCHEMA) assert.ok(text.includes(`env: ${spec.env.join(", ")}`), spec.path);
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  assert.ok(readme.includes(`${START}\n${configTable()}\n${END}`), "README configuration table is current");
  // Uncommented, the documented file is valid and equal to the defaults.
  const uncommented = text
    .split("\n")
    .filter((l) => /^# {0,}[ ]*[A-Za-z-]/.test(l) && !/^#\s*#/.test(l) && !/^# hsdo|^# Layers|^# \(--set|^# names|^# Durations|^# Uncomment|^# and where/.test(l))
    .map((l) => l.replace(/^# /, ""))
    .join("\n");
  const doc = parse(uncommented) as Record<string, unknown>;
  assert.equal(typeof doc, "object");
  const fromFile = resolveConfig({ file: { name: "conf/hsdo.yaml", text: uncommented }, env: {} }).config;
  assert.deepEqual(fromFile, resolveConfig({ env: {} }).config);
});

test("conf/demo.yaml is a valid configuration for --server --client once the demo's run-time values are set", async () => {
  const r = await runHsdo(["config", "--server", "--client", "--config", join(ROOT, "conf/demo.yaml"), "--set", "server.static.file=/tmp/targets.yaml"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^dynamodb\.endpoint\s+embedded\s+\(file .*conf\/demo\.yaml\)$/m);
  assert.match(r.stdout, /^allowLoopback\s+true\s+\(file .*conf\/demo\.yaml\)$/m, "the demo's origins listen on 127.0.0.x");
});
