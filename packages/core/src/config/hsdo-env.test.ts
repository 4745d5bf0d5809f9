import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { describeSource, resolveConfig, type ConfigInput } from "./load.ts";

const resolve = (input: Partial<ConfigInput>) => resolveConfig({ env: {}, ...input });
const envYaml = (text: string) => ({ name: "conf/env.yaml", text });

/** HSDO's shipped conf/env.yaml, as operators copy it: empty strings for what they leave unset. */
const SHIPPED = `
SERVER_CONSUL_API_URL: ""
SERVER_CONSUL_SERVICE_NAME: ""
SERVER_ASG_NAMES: ""
SERVER_HAPROXY_BACKEND_SERVER_MIN_WEIGHT: 1
SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT: 10
SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT: 1
SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL: 30
SERVER_MODE: ""
CLIENT_HAPROXY_SOCKET_PATH: "/var/run/haproxy/admin.sock"
CLIENT_HAPROXY_BACKEND_NAME: ""
CLIENT_HAPROXY_BACKEND_BASE_NAME: ""
CLIENT_HAPROXY_BACKEND_SERVER_PORT: 80
CLIENT_DEDICATED_ASG: "false"
CLIENT_ASG_NAMES: ""
CLIENT_HAPROXY_FALLBACK_BACKEND_NAME: ""
CLIENT_HAPROXY_FALLBACK_BACKEND_BASE_NAME: ""
CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND: "false"
INTERVAL: 1
HAPROXY_BACKEND_SERVERS_LIST_SIZE: 10
DEBUG: "false"
DYNAMODB_TABLE_NAME: ""
AWS_DEFAULT_REGION: "eu-west-1"
EXPORTER_PORT: 9000
`;

test("HSDO's shipped env.yaml loads: typed values, empty strings keep hsdo's defaults", () => {
  const { config, sources } = resolve({ hsdoEnv: envYaml(SHIPPED) });
  assert.equal(config.intervalMs, 1000);
  assert.equal(config.region, "eu-west-1");
  assert.equal(config.http.port, 9000);
  assert.equal(config.server.mode, "aws", "SERVER_MODE \"\" keeps the default");
  assert.equal(config.dynamodb.table, "hsdo", "DYNAMODB_TABLE_NAME \"\" keeps the default");
  assert.equal(config.server.weight.intervalMs, 30_000);
  assert.deepEqual(config.client.backends, [{ name: "http-backend", prefix: "http-backend", port: 80, select: "all", allInFallback: false, pool: "default" }]);
  assert.equal(describeSource(sources.get("interval")!), "env.yaml conf/env.yaml INTERVAL");
  assert.equal(describeSource(sources.get("server.mode")!), "default");
});

test("precedence: defaults < env.yaml < hsdo's YAML < environment < flags", () => {
  const hsdoEnv = envYaml("INTERVAL: 2\nHAPROXY_BACKEND_SERVERS_LIST_SIZE: 20\nDYNAMODB_TABLE_NAME: from-env-yaml\nDEBUG: \"true\"\n");
  const file = { name: "conf/hsdo.yaml", text: "size: 30\ninterval: 3s\n" };
  const r = resolve({ hsdoEnv, file, env: { INTERVAL: "4" }, flags: [{ path: "interval", value: "5s", flag: "--set interval" }] });
  assert.equal(r.config.intervalMs, 5000, "flags over all");
  assert.equal(r.config.size, 30, "hsdo's YAML over env.yaml");
  assert.equal(r.config.dynamodb.table, "from-env-yaml", "env.yaml over defaults");
  assert.equal(r.config.debug, true);
  assert.equal(resolve({ hsdoEnv, file, env: { INTERVAL: "4" } }).config.intervalMs, 4000, "environment over the files, as HSDO's environment over env.yaml");
  assert.equal(resolve({ hsdoEnv, env: { HAPROXY_BACKEND_SERVERS_LIST_SIZE: "40" } }).config.size, 40);
});

test("env.yaml: an unknown name and a value of the wrong type are refused naming the file and the variable", () => {
  const cases: [string, RegExp][] = [
    ["INTERVALL: 1\n", /^conf\/env\.yaml: INTERVALL: 1 is not a variable hsdo reads/],
    ["INTERVAL: soon\n", /^conf\/env\.yaml: INTERVAL: "soon" is not valid \(expected a duration/],
    ["HAPROXY_BACKEND_SERVERS_LIST_SIZE: [1]\n", /^conf\/env\.yaml: HAPROXY_BACKEND_SERVERS_LIST_SIZE: \[1\] is not valid \(expected an integer/],
    ["CLIENT_HAPROXY_BACKEND_SERVER_PORT: http\n", /^conf\/env\.yaml: CLIENT_HAPROXY_BACKEND_SERVER_PORT: "http" is not a port/],
    ["CLIENT_DEDICATED_ASG: maybe\n", /^conf\/env\.yaml: CLIENT_DEDICATED_ASG: "maybe" is not valid \(expected true or false\)/],
    ["- INTERVAL\n", /^conf\/env\.yaml: .* is not a mapping/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => resolve({ hsdoEnv: envYaml(text) }), (err: unknown) => err instanceof ConfigError && re.test(err.message), text);
  }
});

const WEB_API = { "backend-web": { baseName: "web-backend", serverPort: "80" }, "backend-api": { baseName: "api-backend", serverPort: 8080 } };
const EXPECTED = [
  { name: "backend-web", prefix: "web-backend", port: 80, select: "all", allInFallback: false, pool: "default" },
  { name: "backend-api", prefix: "api-backend", port: 8080, select: "all", allInFallback: false, pool: "default" },
];

test("CLIENT_HAPROXY_BACKEND_LIST builds the same backends from an env.yaml mapping, JSON and YAML in the environment", () => {
  const yamlMapping = "CLIENT_HAPROXY_BACKEND_LIST:\n  backend-web:\n    baseName: web-backend\n    serverPort: \"80\"\n  backend-api:\n    baseName: api-backend\n    serverPort: 8080\n";
  const fromFile = resolve({ hsdoEnv: envYaml(yamlMapping) });
  const fromJson = resolve({ env: { CLIENT_HAPROXY_BACKEND_LIST: JSON.stringify(WEB_API) } });
  const fromYaml = resolve({ env: { CLIENT_HAPROXY_BACKEND_LIST: "backend-web: {baseName: web-backend, serverPort: 80}\nbackend-api:\n  baseName: api-backend\n  serverPort: 8080\n" } });
  for (const r of [fromFile, fromJson, fromYaml]) assert.deepEqual(r.config.client.backends, EXPECTED);
  assert.equal(describeSource(fromFile.sources.get("client.backends")!), "env.yaml conf/env.yaml CLIENT_HAPROXY_BACKEND_LIST");
  assert.equal(describeSource(fromJson.sources.get("client.backends")!), "env CLIENT_HAPROXY_BACKEND_LIST");
  // HSDO's latest ignores CLIENT_HAPROXY_BACKEND_NAME/BASE_NAME once the list is set; so does hsdo.
  const both = resolve({ env: { CLIENT_HAPROXY_BACKEND_LIST: JSON.stringify(WEB_API), CLIENT_HAPROXY_BACKEND_NAME: "old", CLIENT_HAPROXY_BACKEND_BASE_NAME: "old" } });
  assert.deepEqual(both.config.client.backends, EXPECTED);
});

test("CLIENT_HAPROXY_BACKEND_LIST with HSDO's dedicated and fallback variables, the environment winning over env.yaml per variable", () => {
  const hsdoEnv = envYaml(
    `CLIENT_HAPROXY_BACKEND_LIST: ${JSON.stringify(WEB_API)}\nCLIENT_HAPROXY_BACKEND_SERVER_PORT: 9090\nCLIENT_DEDICATED_ASG: "false"\nCLIENT_ASG_NAMES: asg-a\nCLIENT_HAPROXY_FALLBACK_BACKEND_NAME: backend-fb\nCLIENT_HAPROXY_FALLBACK_BACKEND_BASE_NAME: fb\nCLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND: "false"\n`,
  );
  // Neither dedicated nor all-in-fallback: HSDO puts nothing in the fallback backend, hsdo drives none.
  assert.deepEqual(resolve({ hsdoEnv }).config.client.backends, EXPECTED);
  const r = resolve({ hsdoEnv, env: { CLIENT_DEDICATED_ASG: "true" } });
  assert.deepEqual(r.config.client.backends, [
    ...EXPECTED.map((b) => ({ ...b, select: "dedicated" })),
    { name: "backend-fb", prefix: "fb", port: 9090, select: "fallback", allInFallback: false, pool: "default" },
  ]);
  assert.deepEqual(r.config.client.groups, ["asg-a"]);
  assert.equal(describeSource(r.sources.get("client.backends")!), "env CLIENT_DEDICATED_ASG");
  const all = resolve({ hsdoEnv, env: { CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND: "true" } });
  assert.deepEqual(all.config.client.backends.at(-1), { name: "backend-fb", prefix: "fb", port: 9090, select: "fallback", allInFallback: true, pool: "default" });
  // hsdo's own file wins over env.yaml's backends, the environment over both.
  const file = { name: "conf/hsdo.yaml", text: "client:\n  backends:\n    - name: be_yaml\n" };
  assert.deepEqual(resolve({ hsdoEnv, file }).config.client.backends.map((b) => b.name), ["be_yaml"]);
  assert.deepEqual(resolve({ hsdoEnv, file, env: { CLIENT_DEDICATED_ASG: "true" } }).config.client.backends.map((b) => b.name), ["backend-web", "backend-api", "backend-fb"]);
});

test("CLIENT_HAPROXY_BACKEND_LIST that cannot be mapped is refused naming the variable", () => {
  const cases: [Partial<ConfigInput>, RegExp][] = [
    [{ env: { CLIENT_HAPROXY_BACKEND_LIST: '{"backend-web": {"serverPort": 80}}' } }, /^CLIENT_HAPROXY_BACKEND_LIST\.backend-web\.baseName: \(unset\) is not a server-template prefix/],
    [{ env: { CLIENT_HAPROXY_BACKEND_LIST: '{"backend-web": {"baseName": "web", "serverPort": "http"}}' } }, /^CLIENT_HAPROXY_BACKEND_LIST\.backend-web\.serverPort: "http" is not a port/],
    [{ env: { CLIENT_HAPROXY_BACKEND_LIST: '{"backend-web": {"baseName": "web", "serverPort": 70000}}' } }, /^CLIENT_HAPROXY_BACKEND_LIST\.backend-web\.serverPort: 70000 is not a port/],
    [{ env: { CLIENT_HAPROXY_BACKEND_LIST: '["backend-web"]' } }, /^CLIENT_HAPROXY_BACKEND_LIST: .* is not a mapping of backends/],
    [{ env: { CLIENT_HAPROXY_BACKEND_LIST: "backend-web" } }, /^CLIENT_HAPROXY_BACKEND_LIST: "backend-web" is not a mapping of backends/],
    [{ env: { CLIENT_HAPROXY_BACKEND_LIST: "{" } }, /^CLIENT_HAPROXY_BACKEND_LIST: "\{" is not valid YAML or JSON/],
    [{ env: { CLIENT_HAPROXY_BACKEND_LIST: '{"backend-web": "web"}' } }, /^CLIENT_HAPROXY_BACKEND_LIST\.backend-web: "web" is not a mapping/],
    [{ env: { CLIENT_HAPROXY_BACKEND_LIST: '{"backend-web": {"baseName": "web", "basename": "x"}}' } }, /^CLIENT_HAPROXY_BACKEND_LIST\.backend-web\.basename: "x" is not a known key/],
    [{ hsdoEnv: envYaml("CLIENT_HAPROXY_BACKEND_LIST:\n  backend-web:\n    serverPort: 80\n") }, /^conf\/env\.yaml: CLIENT_HAPROXY_BACKEND_LIST\.backend-web\.baseName/],
    [{ hsdoEnv: envYaml("CLIENT_HAPROXY_BACKEND_LIST: [a, b]\n") }, /^conf\/env\.yaml: CLIENT_HAPROXY_BACKEND_LIST: .* is not a mapping of backends/],
  ];
  for (const [input, re] of cases) {
    assert.throws(() => resolve(input), (err: unknown) => err instanceof ConfigError && re.test(err.message) && !err.message.includes("\n"), re.source);
  }
});
