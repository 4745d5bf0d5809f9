import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { checkClientConfig, checkServerConfig, resolveConfig, type ConfigInput } from "./load.ts";
import { SCHEMA, type ConfigValues } from "./schema.ts";
import { assembleConfig, type ReadValue } from "./assemble.ts";

const resolve = (input: Partial<ConfigInput>) => resolveConfig({ env: {}, ...input });

test("defaults alone make a complete configuration (HSDO users run without a file)", () => {
  const { config, sources } = resolve({});
  assert.equal(config.pool, "default");
  assert.equal(config.size, 10);
  assert.equal(config.intervalMs, 1000, "HSDO's INTERVAL default");
  assert.deepEqual(config.server.weight, { min: 1, max: 10, step: 1, intervalMs: 30_000 });
  assert.equal(config.http.port, 6789);
  assert.deepEqual(config.client.backends, [
    { name: "http-backend", prefix: "http-backend", port: 80, select: "all", allInFallback: false, pool: "default" },
  ]);
  for (const spec of SCHEMA) assert.deepEqual(sources.get(spec.path), { kind: "default" }, spec.path);
});

test("precedence: file over default, environment over file, flag over environment", () => {
  const file = { name: "hsdo.yaml", text: "size: 20\ninterval: 10s\npool: from-file\nserver:\n  weight:\n    max: 50\n" };
  const env = { HAPROXY_BACKEND_SERVERS_LIST_SIZE: "30", INTERVAL: "2", HSDO_POOL: "from-env" };
  const flags = [{ path: "pool", value: "from-flag", flag: "--pool" }];
  const { config, sources } = resolve({ file, env, flags });
  assert.equal(config.size, 30);
  assert.deepEqual(sources.get("size"), { kind: "env", name: "HAPROXY_BACKEND_SERVERS_LIST_SIZE" });
  assert.equal(config.intervalMs, 2000);
  assert.equal(config.pool, "from-flag");
  assert.deepEqual(sources.get("pool"), { kind: "flag", name: "--pool" });
  assert.equal(config.server.weight.max, 50);
  assert.deepEqual(sources.get("server.weight.max"), { kind: "file", file: "hsdo.yaml" });
  assert.equal(config.client.backends[0]!.pool, "from-flag", "backends default to the effective pool");
});

test("an HSDO_* name wins over HSDO's legacy name for the same key", () => {
  const { config, sources } = resolve({ env: { HAPROXY_BACKEND_SERVERS_LIST_SIZE: "30", HSDO_SIZE: "40" } });
  assert.equal(config.size, 40);
  assert.deepEqual(sources.get("size"), { kind: "env", name: "HSDO_SIZE" });
});

test("every HSDO variable keeps its name and meaning", () => {
  const env = {
    SERVER_MODE: "consul",
    SERVER_ASG_NAMES: "asg-a, asg-b",
    SERVER_CONSUL_API_URL: "http://consul.local:8500",
    SERVER_CONSUL_SERVICE_NAME: "origin",
    SERVER_HAPROXY_BACKEND_SERVER_MIN_WEIGHT: "2",
    SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT: "20",
    SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT: "3",
    SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL: "15",
    CLIENT_HAPROXY_SOCKET_PATH: "/run/haproxy/admin.sock",
    CLIENT_HAPROXY_BACKEND_NAME: "be_origin",
    CLIENT_HAPROXY_BACKEND_BASE_NAME: "origin",
    CLIENT_HAPROXY_BACKEND_SERVER_PORT: "8080",
    CLIENT_DEDICATED_ASG: "true",
    CLIENT_ASG_NAMES: "asg-a",
    CLIENT_HAPROXY_FALLBACK_BACKEND_NAME: "be_fallback",
    CLIENT_HAPROXY_FALLBACK_BACKEND_BASE_NAME: "fallback",
    CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND: "true",
    INTERVAL: "3",
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: "64",
    DEBUG: "true",
    DYNAMODB_TABLE_NAME: "hsdo-prod",
    AWS_DEFAULT_REGION: "eu-west-3",
    EXPORTER_PORT: "9100",
  };
  const { config, sources } = resolve({ env });
  assert.equal(config.server.mode, "consul");
  assert.deepEqual(config.server.aws.asgNames, ["asg-a", "asg-b"]);
  assert.equal(config.server.consul.url, "http://consul.local:8500");
  assert.deepEqual(config.server.consul.services, ["origin"]);
  assert.deepEqual(config.server.weight, { min: 2, max: 20, step: 3, intervalMs: 15_000 });
  assert.equal(config.client.socket, "/run/haproxy/admin.sock");
  assert.deepEqual(config.client.backends, [
    { name: "be_origin", prefix: "origin", port: 8080, select: "dedicated", allInFallback: false, pool: "default" },
    { name: "be_fallback", prefix: "fallback", port: 8080, select: "fallback", allInFallback: true, pool: "default" },
  ]);
  assert.deepEqual(config.client.groups, ["asg-a"]);
  assert.equal(config.intervalMs, 3000);
  assert.equal(config.size, 64);
  assert.equal(config.debug, true);
  assert.equal(config.dynamodb.table, "hsdo-prod");
  assert.equal(config.region, "eu-west-3");
  assert.equal(config.http.port, 9100);
  for (const [name] of Object.entries(env)) {
    const found = [...sources.values()].some((s) => s.kind === "env" && s.name.split(",").includes(name));
    assert.ok(found, `${name} is recorded as the source of a key`);
  }
});

test("HSDO's backend variables: not dedicated means `all`; no fallback name means one backend", () => {
  const { config } = resolve({ env: { CLIENT_HAPROXY_BACKEND_NAME: "be", CLIENT_DEDICATED_ASG: "false" } });
  assert.deepEqual(config.client.backends, [{ name: "be", prefix: "be", port: 80, select: "all", allInFallback: false, pool: "default" }]);
});

test("backends from YAML and from HSDO_CLIENT_BACKENDS JSON", () => {
  const file = {
    name: "f.yaml",
    text: "client:\n  az: eu-west-3a\n  backends:\n    - name: be_local\n      prefix: local\n      select: dedicated\n    - name: be_all\n      pool: other\n      port: 8443\n",
  };
  const { config } = resolve({ file });
  assert.deepEqual(config.client.backends, [
    { name: "be_local", prefix: "local", select: "dedicated", allInFallback: false, pool: "default" },
    { name: "be_all", prefix: "be_all", port: 8443, select: "all", allInFallback: false, pool: "other" },
  ]);
  const env = { HSDO_CLIENT_BACKENDS: '[{"name":"x","select":"fallback","allInFallback":true}]' };
  assert.equal(resolve({ file, env }).config.client.backends[0]!.name, "x");
});

test("durations accept 30s, 1m, 500ms and plain seconds", () => {
  const cases: [string, number][] = [["30s", 30_000], ["1m", 60_000], ["500ms", 500], ["7", 7000], ["1.5", 1500]];
  for (const [text, ms] of cases) assert.equal(resolve({ env: { INTERVAL: text } }).config.intervalMs, ms, text);
});

const bad: [string, Partial<ConfigInput>, RegExp][] = [
  ["integer from env", { env: { HAPROXY_BACKEND_SERVERS_LIST_SIZE: "abc" } }, /^HAPROXY_BACKEND_SERVERS_LIST_SIZE: "abc" is not valid \(expected an integer in 1\.\.5000\)$/],
  ["out of range", { env: { HAPROXY_BACKEND_SERVERS_LIST_SIZE: "0" } }, /^HAPROXY_BACKEND_SERVERS_LIST_SIZE: "0" .*1\.\.5000/],
  ["boolean", { env: { DEBUG: "maybe" } }, /^DEBUG: "maybe" is not valid \(expected true or false\)$/],
  ["duration", { env: { INTERVAL: "soon" } }, /^INTERVAL: "soon" .*duration/],
  ["enum", { env: { SERVER_MODE: "azure" } }, /^SERVER_MODE: "azure" .*one of aws, consul, static/],
  ["unknown key in file", { file: { name: "h.yaml", text: "sise: 3\n" } }, /^sise: 3 is not a known key in h\.yaml/],
  ["unknown nested key", { file: { name: "h.yaml", text: "server:\n  weight:\n    maximum: 3\n" } }, /^server\.weight\.maximum: 3 is not a known key/],
  ["wrong type in file", { file: { name: "h.yaml", text: "size: ten\n" } }, /^size: "ten" is not valid \(expected an integer/],
  ["invalid YAML", { file: { name: "h.yaml", text: "size: [1,\n" } }, /^h\.yaml: "\(file\)" is not valid YAML/],
  ["backend port", { file: { name: "h.yaml", text: "client:\n  backends:\n    - name: be\n      port: 70000\n" } }, /^client\.backends\[0\]\.port: 70000 is not a port \(expected 1\.\.65535/],
  ["backend name", { file: { name: "h.yaml", text: "client:\n  backends:\n    - name: 'be; shutdown'\n" } }, /^client\.backends\[0\]\.name: "be; shutdown" is not a backend name/],
  ["backend unknown key", { env: { HSDO_CLIENT_BACKENDS: '[{"name":"a","weight":3}]' } }, /^HSDO_CLIENT_BACKENDS\[0\]\.weight: 3 is not a known key/],
  ["backends JSON", { env: { HSDO_CLIENT_BACKENDS: "[{" } }, /^HSDO_CLIENT_BACKENDS: "\[\{" is not valid JSON/],
  ["legacy port", { env: { CLIENT_HAPROXY_BACKEND_SERVER_PORT: "http" } }, /^CLIENT_HAPROXY_BACKEND_SERVER_PORT: "http" is not a port/],
  ["min above max", { env: { SERVER_HAPROXY_BACKEND_SERVER_MIN_WEIGHT: "20" } }, /^SERVER_HAPROXY_BACKEND_SERVER_MIN_WEIGHT \(server\.weight\.min\): 20 is above server\.weight\.max \(10\)/],
  ["heartbeat vs lease", { env: { HSDO_SERVER_HEARTBEAT: "10s" } }, /^HSDO_SERVER_HEARTBEAT \(server\.heartbeat\): .*too long for server\.lease/],
  ["misspelt HSDO variable", { env: { HSDO_SIZ: "3" } }, /^HSDO_SIZ: "3" is not a known variable/],
  ["unknown --set key", { flags: [{ path: "nope", value: "1", flag: "--set nope" }] }, /^--set nope: "nope" names no configuration key/],
  ["endpoint", { env: { HSDO_DYNAMODB_ENDPOINT: "localhost:8000" } }, /^HSDO_DYNAMODB_ENDPOINT \(dynamodb\.endpoint\): "localhost:8000" is not valid/],
  ["fraction", { env: { HSDO_SERVER_MAX_REMOVAL_FRACTION: "1.5" } }, /^HSDO_SERVER_MAX_REMOVAL_FRACTION: "1\.5" .*in 0\.\.1/],
  ["ASG name hsdo cannot store", { env: { SERVER_ASG_NAMES: "web,my asg" } }, /^SERVER_ASG_NAMES \(server\.aws\.asgNames\): "my asg" is not a name hsdo can store/],
  ["backend pool", { env: { HSDO_CLIENT_BACKENDS: '[{"name":"be","pool":"my pool"}]' } }, /^HSDO_CLIENT_BACKENDS\[0\]\.pool: "my pool" is not a pool name/],
  ["table name", { env: { DYNAMODB_TABLE_NAME: "t2" } }, /^DYNAMODB_TABLE_NAME \(dynamodb\.table\): "t2" is not a DynamoDB table name/],
  ["duplicate backend", { env: { HSDO_CLIENT_BACKENDS: '[{"name":"a"},{"name":"a"}]' } }, /^client\.backends\[1\]\.name: "a" appears twice/],
];

for (const [what, input, message] of bad) {
  test(`bad input is refused with the key, the value and what was expected: ${what}`, () => {
    assert.throws(() => resolve(input), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      assert.match(err.message, message);
      assert.ok(!err.message.includes("\n"), "one line");
      return true;
    });
  });
}

test("--server needs what its mode needs", () => {
  assert.throws(() => checkServerConfig(resolve({})), /server\.aws\.asgNames \(SERVER_ASG_NAMES\): \[\] is required when server\.mode is aws/);
  assert.throws(() => checkServerConfig(resolve({ env: { SERVER_MODE: "consul" } })), /SERVER_CONSUL_SERVICE_NAME.*required when server\.mode is consul/);
  assert.throws(() => checkServerConfig(resolve({ env: { SERVER_MODE: "static" } })), /server\.static\.file.*required when server\.mode is static/);
  assert.doesNotThrow(() => checkServerConfig(resolve({ env: { SERVER_ASG_NAMES: "a" } })));
});

test("--client with a dedicated backend needs this node's groups or AZ", () => {
  const env = { CLIENT_HAPROXY_BACKEND_NAME: "be", CLIENT_DEDICATED_ASG: "true" };
  assert.throws(() => checkClientConfig(resolve({ env })), /client\.backends\[0\]\.select: "dedicated" needs this node's groups or AZ/);
  assert.doesNotThrow(() => checkClientConfig(resolve({ env: { ...env, CLIENT_ASG_NAMES: "asg-a" } })));
});

test("secrets are never shown in values of errors", () => {
  const { config } = resolve({ env: { CONSUL_HTTP_TOKEN: "s3cr3t" } });
  assert.equal(config.server.consul.token, "s3cr3t");
});

test("--client refuses a portless backend of an AWS pool whose targets carry no port, naming the backend and the line to add", () => {
  const file = (text: string) => ({ name: "hsdo.yaml", text });
  const portless = "client:\n  backends:\n    - name: be_app\n      prefix: app\n";
  const aws = "server:\n  mode: aws\n  aws:\n    asgNames: [web]\n";
  assert.throws(
    () => checkClientConfig(resolve({ file: file(aws + portless) })),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, "client.backends[0].port");
      assert.match(err.message, /^client\.backends\[0\]\.port: \(unset\) must be set for backend be_app \(in hsdo\.yaml\)/);
      assert.match(err.message, /`port: 8080` under its `- name:` line/);
      assert.match(err.message, /or set `server\.aws\.port: 8080` \(HSDO_SERVER_AWS_PORT\)/);
      return true;
    },
  );
  // ASG names alone (the default mode is aws) say as much; so does SERVER_MODE=aws alone.
  assert.throws(() => checkClientConfig(resolve({ file: file(portless), env: { SERVER_ASG_NAMES: "web" } })), /backend be_app/);
  assert.throws(() => checkClientConfig(resolve({ file: file(portless), env: { SERVER_MODE: "aws" } })), /backend be_app/);
  // JSON in the environment: the fix is written as JSON.
  assert.throws(
    () => checkClientConfig(resolve({ env: { SERVER_MODE: "aws", HSDO_CLIENT_BACKENDS: '[{"name":"be_env"}]' } })),
    /backend be_env \(set by HSDO_CLIENT_BACKENDS\).*`"port": 8080` in its JSON object/,
  );
  // Either port makes it knowable.
  assert.doesNotThrow(() => checkClientConfig(resolve({ file: file(aws + portless.replace("prefix: app", "prefix: app\n      port: 8080")) })));
  assert.doesNotThrow(() => checkClientConfig(resolve({ file: file(aws + portless), env: { HSDO_SERVER_AWS_PORT: "8080" } })));
});

test("--client leaves portless backends to the data when the configuration cannot tell", () => {
  const file = (text: string) => ({ name: "hsdo.yaml", text });
  const portless = "client:\n  backends:\n    - name: be_app\n";
  // Nothing about the server (a client-only file): the server may run Consul or a static file.
  assert.doesNotThrow(() => checkClientConfig(resolve({ file: file(portless) })));
  // Consul (port 0 is possible) and static files (port optional) are only knowable at run time.
  assert.doesNotThrow(() => checkClientConfig(resolve({ file: file(portless), env: { SERVER_MODE: "consul" } })));
  assert.doesNotThrow(() => checkClientConfig(resolve({ file: file(portless), env: { SERVER_MODE: "static" } })));
  // A backend of another pool is fed by a server this file does not describe.
  assert.doesNotThrow(() =>
    checkClientConfig(resolve({ file: file("client:\n  backends:\n    - { name: be_other, pool: other }\n"), env: { SERVER_ASG_NAMES: "web" } })),
  );
  // HSDO's variables always give a port (CLIENT_HAPROXY_BACKEND_SERVER_PORT, 80 when unset), as HSDO did.
  const legacy = resolve({ env: { SERVER_ASG_NAMES: "web", CLIENT_HAPROXY_BACKEND_NAME: "be", CLIENT_HAPROXY_FALLBACK_BACKEND_NAME: "fb", CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND: "true" } });
  assert.deepEqual(legacy.config.client.backends.map((b) => b.port), [80, 80]);
  assert.doesNotThrow(() => checkClientConfig(legacy));
});

test("the Config is assembled from every schema key, and a misspelt path does not compile", () => {
  const { values } = resolve({});
  const read = new Set<string>();
  const config = assembleConfig((path) => {
    read.add(path);
    return values.get(path) as ConfigValues[typeof path];
  });
  assert.ok(config.pool);
  // A key in SCHEMA that assembly never reads would be accepted, documented and then ignored.
  assert.deepEqual([...read].sort(), SCHEMA.map((s) => s.path).sort(), "assembleConfig reads every key of the schema, once each");
  // @ts-expect-error: a path that is not a schema key is a type error (the type check of `npm test` fails if it compiles).
  void ((r: ReadValue) => r("server.consul.wiat"));
});

/** Every path to an undefined value in a plain object tree. */
function undefinedLeaves(node: unknown, path = "config"): string[] {
  if (node === undefined) return [path];
  if (node === null || typeof node !== "object") return [];
  return Object.entries(node).flatMap(([k, v]) => undefinedLeaves(v, Array.isArray(node) ? `${path}[${k}]` : `${path}.${k}`));
}

test("every leaf of the Config is set: at the defaults, and with every key set", () => {
  assert.deepEqual(undefinedLeaves(resolve({}).config), []);
  const env = {
    HSDO_SERVER_AWS_PORT: "8080",
    HSDO_CLIENT_BACKENDS: JSON.stringify([{ name: "b", port: 81, pool: "other", select: "fallback", allInFallback: true }]),
  };
  const { config } = resolve({ env });
  assert.deepEqual(undefinedLeaves(config), []);
  assert.equal(config.server.aws.port, 8080, "an optional key, once set, is in the Config");
  assert.deepEqual(config.client.backends, [{ name: "b", prefix: "b", port: 81, pool: "other", select: "fallback", allInFallback: true }]);
  // Optional leaves are absent, never present and undefined.
  assert.ok(!("port" in resolve({}).config.server.aws));
});
