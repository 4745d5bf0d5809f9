// The release package as an operator gets it: `npm run pack`'s tarball,
// installed with `npm install -g --omit=dev` into a temporary prefix (its
// dependencies come from the registry or npm's cache), then the installed
// `hsdo`, found on PATH, runs: --version, config, and a one-shot client
// against a real HAProxy and dynalite, then a running client's log line and
// hsdo_build_info. The other tests run the sources through tsx; this one
// runs the compiled bundle without tsx anywhere in its node_modules.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { parseServersState } from "@hsdo/client";
import type { Slot } from "@hsdo/core";
import { dynaliteWithTable, startHaproxy, templateBackend, ROOT, cleanEnv, freePort, metricValue, startProc, startPublisher, waitFor, dynamoEnv } from "@hsdo/testkit";

const run = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const TABLE = "hsdo";
const POOL = "default";
const SIZE = 4;

interface Installed {
  prefix: string;
  /** The installed package's directory (lib/node_modules/hsdo). */
  dir: string;
  /** PATH with the prefix's bin first, and the node running this test (the bin's `#!/usr/bin/env node`). */
  env(extra?: Record<string, string>): Record<string, string>;
}

/** Builds and packs into a temporary directory (dist/ is left alone), then installs the tarball globally into a temporary prefix. */
async function install(t: TestContext): Promise<Installed> {
  const work = mkdtempSync(join(tmpdir(), "hsdo-release-"));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const staged = join(work, "package");
  const built = await run(process.execPath, [join(ROOT, "scripts/build.mjs"), "--pack", "--out", staged], { cwd: ROOT, encoding: "utf8" });
  const tarball = join(work, `hsdo-${VERSION}.tgz`);
  assert.ok(existsSync(tarball), `npm run pack wrote ${tarball}:\n${built.stdout}${built.stderr}`);

  const prefix = join(work, "prefix");
  // --prefer-offline: the dependencies come from npm's cache when it has them (a few seconds), else from the registry.
  await run("npm", ["install", "-g", "--prefix", prefix, "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", tarball], {
    cwd: work,
    encoding: "utf8",
    timeout: 180_000,
  });
  const path = [join(prefix, "bin"), dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(":");
  return {
    prefix,
    dir: join(prefix, "lib/node_modules/hsdo"),
    env: (extra = {}) => ({ ...cleanEnv(extra), PATH: path }),
  };
}

function ready(slot: number, n: number, weight: number): Slot {
  return { slot, state: "ready", addr: `10.0.0.${n}`, port: 80, name: `t${n}`, group: "g", az: "az1", weight, since: 1_700_000_000_000 };
}

test("the tarball installs a working hsdo with production dependencies only: --version, config, --client --once, build info", async (t) => {
  const hsdo = await install(t);

  // What the tarball holds and what npm installed beside it.
  const pkg = JSON.parse(readFileSync(join(hsdo.dir, "package.json"), "utf8")) as Record<string, Record<string, string>>;
  assert.equal(pkg.name as unknown, "hsdo");
  assert.equal(pkg.version as unknown, VERSION);
  assert.deepEqual(pkg.bin, { hsdo: "bin/hsdo.js" });
  assert.deepEqual(pkg.engines, { node: ">=22" });
  for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
    assert.ok(!name.startsWith("@hsdo/"), `${name}: the workspace packages are inlined in the bundle, not dependencies`);
  }
  assert.ok(pkg.optionalDependencies?.dynalite, "dynalite (embedded DynamoDB) is optional");
  const installed = readdirSync(join(hsdo.dir, "node_modules"));
  for (const dev of ["tsx", "esbuild", "typescript", "fast-check", "@types"]) assert.ok(!installed.includes(dev), `${dev} is not installed with hsdo`);
  assert.ok(installed.includes("yargs") && installed.includes("@aws-sdk"), "the production dependencies are");
  for (const f of ["conf/hsdo.yaml", "conf/systemd/hsdo-server.service", "conf/systemd/hsdo-client.service", "conf/prometheus/alerts.yaml", "conf/grafana-dashboard.json", "README.md"]) {
    assert.ok(existsSync(join(hsdo.dir, f)), `the package carries ${f}`);
  }
  assert.ok(!existsSync(join(hsdo.dir, "src")) && !readdirSync(join(hsdo.dir, "lib"), { recursive: true }).some((f) => String(f).endsWith(".ts")), "no TypeScript sources");

  // `hsdo` is the command on PATH, as after `npm install -g`.
  const version = await run("hsdo", ["--version"], { cwd: tmpdir(), env: hsdo.env(), encoding: "utf8" });
  assert.equal(version.stdout.trim(), VERSION);
  const config = await run("hsdo", ["config", "--json"], { cwd: tmpdir(), env: hsdo.env({ HSDO_POOL: "release" }), encoding: "utf8" });
  const rows = new Map((JSON.parse(config.stdout) as { key: string; value: unknown }[]).map((r) => [r.key, r.value]));
  assert.equal(rows.get("pool"), "release", "hsdo config reads the environment");

  // A one-shot client: a published pool applied to a real HAProxy.
  const { dynalite, db } = await dynaliteWithTable(t, TABLE);
  const haproxy = await startHaproxy({ body: templateBackend("be", "srv", SIZE) });
  t.after(() => haproxy.stop());
  const cache = mkdtempSync(join(tmpdir(), "hsdo-release-cache-"));
  t.after(() => rmSync(cache, { recursive: true, force: true }));
  const pub = await startPublisher(t, db, { table: TABLE, pool: POOL, size: SIZE });
  await pub.publish([ready(1, 1, 5), ready(2, 2, 3)]);
  const clientEnv = (extra: Record<string, string> = {}) =>
    hsdo.env({
      ...dynamoEnv(dynalite.endpoint),
      DYNAMODB_TABLE_NAME: TABLE,
      HAPROXY_BACKEND_SERVERS_LIST_SIZE: String(SIZE),
      CLIENT_HAPROXY_SOCKET_PATH: haproxy.socket,
      CLIENT_HAPROXY_BACKEND_NAME: "be",
      CLIENT_HAPROXY_BACKEND_BASE_NAME: "srv",
      CLIENT_HAPROXY_BACKEND_SERVER_PORT: "8080",
      INTERVAL: "300ms",
      HSDO_CLIENT_CACHE_DIR: cache,
      EXPORTER_PORT: "0",
      ...extra,
    });
  const once = await run("hsdo", ["--client", "--once"], { cwd: tmpdir(), env: clientEnv(), encoding: "utf8", timeout: 60_000 });
  assert.doesNotMatch(once.stderr, /unexpected error/, once.stderr);
  const live = (parseServersState(await haproxy.command("show servers state be")).get("be") ?? []).filter((s) => s.state !== "maint");
  assert.deepEqual(
    live.map((s) => `${s.name} ${s.addr}:${s.port}/${s.uweight}`),
    ["srv1 10.0.0.1:8080/5", "srv2 10.0.0.2:8080/3"],
    "the installed hsdo applied the pool",
  );

  // A running client says which build it is: in its start-up line and in hsdo_build_info.
  const port = await freePort();
  const proc = startProc("installed-client", join(hsdo.prefix, "bin/hsdo"), ["--client"], { cwd: tmpdir(), env: clientEnv({ EXPORTER_PORT: String(port), HSDO_HTTP_HOST: "127.0.0.1" }) });
  t.after(() => proc.stop("SIGKILL"));
  const metrics = await waitFor("the installed client serves hsdo_build_info", async () => {
    if (!proc.running()) throw new Error(`the installed client exited: ${proc.output()}`);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
    const body = res?.ok ? await res.text() : "";
    return body.includes("hsdo_build_info") ? body : undefined;
  });
  const info = /^hsdo_build_info\{([^}]*)\} 1$/m.exec(metrics);
  assert.ok(info, metrics);
  const labels = Object.fromEntries([...info[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  assert.equal(labels.version, VERSION);
  assert.equal(labels.node, process.versions.node);
  assert.match(labels.commit ?? "", /^([0-9a-f]{7,40}(\+dirty)?|unknown)$/, "the commit baked in at build time");
  assert.equal(metricValue(metrics, "hsdo_build_info", labels as Record<string, string>), 1);
  const started = await waitFor("the start-up line is logged", () =>
    proc
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.msg === "hsdo started" || e.message === "hsdo started"),
  );
  assert.equal(started.version, VERSION);
  assert.equal(started.commit, labels.commit);
  await proc.stop("SIGTERM");
});
