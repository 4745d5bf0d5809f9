// HSDO's conf/env.yaml and CLIENT_HAPROXY_BACKEND_LIST through the real command:
// `hsdo config` names env.yaml as the source, and a client configured only the
// HSDO way drives the backends HSDO would, on a real HAProxy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServersState } from "@hsdo/client";
import type { Slot } from "@hsdo/core";
import { dynaliteWithTable, freePort, metricValue, runHsdo, startHaproxy, startHsdo, startPublisher, templateBackend, waitFor } from "@hsdo/testkit";

function workdir(envYaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-envyaml-"));
  mkdirSync(join(dir, "conf"));
  writeFileSync(join(dir, "conf/env.yaml"), envYaml);
  return dir;
}

test("hsdo config reads conf/env.yaml from the working directory, below hsdo's file and the environment, and names it as the source", async () => {
  const dir = workdir("INTERVAL: 2\nHAPROXY_BACKEND_SERVERS_LIST_SIZE: 20\nDYNAMODB_TABLE_NAME: hsdo-legacy\n");
  writeFileSync(join(dir, "conf/hsdo.yaml"), "size: 30\n");
  const r = await runHsdo(["config"], { INTERVAL: "3" }, { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^dynamodb\.table\s+hsdo-legacy\s+\(env\.yaml conf\/env\.yaml DYNAMODB_TABLE_NAME\)$/m);
  assert.match(r.stdout, /^size\s+30\s+\(file conf\/hsdo\.yaml\)$/m);
  assert.match(r.stdout, /^interval\s+3s\s+\(env INTERVAL\)$/m);
  const flags = await runHsdo(["config", "--set", "interval=4s", "-d"], { INTERVAL: "3" }, { cwd: dir });
  assert.match(flags.stdout, /^interval\s+4s\s+\(flag --set interval\)$/m);
  assert.match(flags.stdout, /^debug\s+true\s+\(flag --debug\)$/m, "-d is --debug, as in HSDO");
  const other = join(dir, "other.yaml");
  writeFileSync(other, "INTERVAL: 5\n");
  const named = await runHsdo(["config", "--hsdo-env", other], {}, { cwd: dir });
  assert.match(named.stdout, new RegExp(`^interval\\s+5s\\s+\\(env\\.yaml ${other.replace(/[.]/g, "\\.")} INTERVAL\\)$`, "m"));
});

test("a bad env.yaml exits 2 with one line naming the file and the variable", async () => {
  for (const [text, re] of [
    ["INTERVAL: soon\n", /^hsdo: conf\/env\.yaml: INTERVAL: "soon" is not valid/],
    ["INTERVALL: 1\n", /^hsdo: conf\/env\.yaml: INTERVALL: 1 is not a variable hsdo reads/],
    ["CLIENT_HAPROXY_BACKEND_LIST:\n  be:\n    serverPort: 80\n", /^hsdo: conf\/env\.yaml: CLIENT_HAPROXY_BACKEND_LIST\.be\.baseName/],
  ] as const) {
    const r = await runHsdo(["config"], {}, { cwd: workdir(text) });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
  const env = await runHsdo(["config"], { CLIENT_HAPROXY_BACKEND_LIST: '{"be": {"baseName": "srv", "serverPort": "http"}}' });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /^hsdo: CLIENT_HAPROXY_BACKEND_LIST\.be\.serverPort: "http" is not a port/);
});

test("-s and -c are --server and --client, as in HSDO", async () => {
  const s = await runHsdo(["config", "-s"]);
  assert.equal(s.code, 2);
  assert.match(s.stderr, /SERVER_ASG_NAMES/);
  const help = await runHsdo(["--help"]);
  assert.match(help.stdout, /-s, --server/);
  assert.match(help.stdout, /-c, --client/);
  assert.match(help.stdout, /-d, --debug/);
});

test("done when: a client configured only with HSDO's env.yaml and variables drives the backends HSDO would", async (t) => {
  const SIZE = 4;
  const { dynalite, db } = await dynaliteWithTable(t, "hsdo-legacy");
  const haproxy = await startHaproxy({
    body: [templateBackend("backend-web", "web-backend", SIZE), templateBackend("backend-api", "api-backend", SIZE), templateBackend("backend-fb", "fb", SIZE)].join("\n"),
  });
  t.after(() => haproxy.stop());
  const publisher = await startPublisher(t, db, { table: "hsdo-legacy", pool: "default", size: SIZE });
  const slot = (n: number, group: string, weight: number): Slot => ({ slot: n, state: "ready", addr: `10.0.0.${n}`, name: `i-${n}`, group, weight, since: 1_700_000_000_000 });
  await publisher.publish([slot(1, "asg-a", 7), slot(2, "asg-b", 3)]);

  // HSDO's env.yaml as an operator of HSDO's latest writes it; the deployment's variables on top.
  const dir = workdir(`CLIENT_HAPROXY_SOCKET_PATH: "/var/run/haproxy/admin.sock"
CLIENT_HAPROXY_BACKEND_LIST:
  backend-web:
    baseName: web-backend
    serverPort: "80"
  backend-api:
    baseName: api-backend
    serverPort: 8080
CLIENT_HAPROXY_BACKEND_NAME: ""
CLIENT_HAPROXY_BACKEND_BASE_NAME: ""
CLIENT_HAPROXY_BACKEND_SERVER_PORT: 9090
CLIENT_DEDICATED_ASG: "true"
CLIENT_ASG_NAMES: "asg-a"
CLIENT_HAPROXY_FALLBACK_BACKEND_NAME: "backend-fb"
CLIENT_HAPROXY_FALLBACK_BACKEND_BASE_NAME: "fb"
CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND: "false"
INTERVAL: 1
HAPROXY_BACKEND_SERVERS_LIST_SIZE: ${SIZE}
DEBUG: "false"
DYNAMODB_TABLE_NAME: "hsdo-legacy"
AWS_DEFAULT_REGION: "eu-west-1"
EXPORTER_PORT: 9000
`);
  const port = await freePort();
  const proc = startHsdo(
    "hsdo-client-envyaml",
    ["-c"],
    {
      CLIENT_HAPROXY_SOCKET_PATH: haproxy.socket,
      EXPORTER_PORT: String(port),
      HSDO_HTTP_HOST: "127.0.0.1",
      HSDO_DYNAMODB_ENDPOINT: dynalite.endpoint,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      HSDO_CLIENT_CACHE_DIR: join(dir, "cache"),
      HSDO_CLIENT_SERVER_STATE_FILE: join(dir, "state"),
    },
    dir,
  );
  t.after(() => proc.stop("SIGKILL"));

  // What HSDO's client sends: slot 1 (asg-a, this node's) in every listed backend at its serverPort,
  // slot 2 (asg-b) only in the fallback at CLIENT_HAPROXY_BACKEND_SERVER_PORT.
  const live = async (backend: string) => {
    const out: Record<string, string> = {};
    for (const s of parseServersState(await haproxy.command(`show servers state ${backend}`)).get(backend) ?? []) {
      if (s.state !== "maint") out[s.name] = `${s.addr}:${s.port}/${s.uweight}`;
    }
    return out;
  };
  const want = { "backend-web": { "web-backend1": "10.0.0.1:80/7" }, "backend-api": { "api-backend1": "10.0.0.1:8080/7" }, "backend-fb": { fb2: "10.0.0.2:9090/3" } };
  await waitFor("HAProxy driven as HSDO would", async () => {
    if (!proc.running()) throw new Error(`the client exited: ${proc.output()}`);
    const got = { "backend-web": await live("backend-web"), "backend-api": await live("backend-api"), "backend-fb": await live("backend-fb") };
    return JSON.stringify(got) === JSON.stringify(want) ? true : false;
  }, { timeoutMs: 20_000 });

  // HSDO's gauge, HSDO's labels; the series of a freed slot goes away.
  const metrics = async () => (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  assert.equal(metricValue(await metrics(), "hsdo_server_weight", { id: "1", name: "i-1", ip: "10.0.0.1", asg: "asg-a" }), 7);
  assert.equal(metricValue(await metrics(), "hsdo_server_weight", { id: "2", name: "i-2", ip: "10.0.0.2", asg: "asg-b" }), 3);
  await publisher.publish([{ slot: 2, state: "free", weight: 0 }]);
  await waitFor("the freed slot's series removed", async () => !(await metrics()).includes('hsdo_server_weight{id="2"'), { timeoutMs: 10_000 });
});
