import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { Metrics } from "@hsdo/cli/metrics";
import { ROOT, runHsdo } from "@hsdo/testkit";
import { haproxyBinary } from "../scripts/haproxy-preflight.mjs";
import { CONF_FILES } from "../scripts/build.mjs";

/*
 * The deployment files of conf/: systemd units (parsed, and verified by
 * systemd-analyze where it exists), the environment file and sample HAProxy
 * configuration they go with (checked by the real `hsdo config` and the real
 * `haproxy -c`), and the Grafana dashboard against the metrics hsdo serves.
 */

type Unit = Map<string, [string, string][]>;

/** systemd's unit syntax: [Section], Key=Value, # and ; comments, backslash continuations, repeated keys. */
function parseUnit(text: string, file: string): Unit {
  const unit: Unit = new Map();
  let section: string | undefined;
  let pending = "";
  for (const [n, raw] of text.split("\n").entries()) {
    const line = (pending + raw).trim();
    pending = "";
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.endsWith("\\")) {
      pending = `${line.slice(0, -1)} `;
      continue;
    }
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      assert.ok(!unit.has(section), `${file}:${n + 1}: [${section}] appears once`);
      unit.set(section, []);
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    assert.ok(kv, `${file}:${n + 1}: "${line}" is Key=Value`);
    assert.ok(section, `${file}:${n + 1}: ${kv[1]} is inside a section`);
    unit.get(section)!.push([kv[1]!, kv[2]!.trim()]);
  }
  return unit;
}

function values(unit: Unit, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

function one(unit: Unit, section: string, key: string): string {
  const v = values(unit, section, key);
  assert.equal(v.length, 1, `[${section}] ${key} is set once`);
  return v[0]!;
}

function words(v: string): string[] {
  return v.split(/\s+/).filter(Boolean);
}

/** KEY=VALUE lines of an environment file, as systemd's EnvironmentFile reads them. */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    assert.ok(m, `"${line}" is KEY=VALUE`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

const UNITS = { server: "conf/systemd/hsdo-server.service", client: "conf/systemd/hsdo-client.service" } as const;
/** Where `npm install -g --prefix /usr/local` of the release tarball puts the command and the package (README "Installing"). */
const INSTALLED_BIN = "/usr/local/bin/hsdo";
const INSTALLED_PACKAGE = "/usr/local/lib/node_modules/hsdo/";
/** The units' --config file is conf/hsdo.yaml installed as /etc/hsdo/hsdo.yaml (see the units' install notes). */
const INSTALLED_CONFIG: Record<string, string> = { "/etc/hsdo/hsdo.yaml": "conf/hsdo.yaml" };

interface Row {
  key: string;
  value: unknown;
}

/** A unit's ExecStart arguments after the hsdo command, with --config mapped to the repository file, and the sample /etc/default/hsdo. */
function unitInvocation(role: "server" | "client"): { args: string[]; env: Record<string, string> } {
  const unit = parseUnit(readFileSync(join(ROOT, UNITS[role]), "utf8"), UNITS[role]);
  const [, ...args] = words(one(unit, "Service", "ExecStart"));
  const mapped = args.map((a) => (INSTALLED_CONFIG[a] ? join(ROOT, INSTALLED_CONFIG[a]) : a));
  return { args: mapped, env: parseEnvFile(readFileSync(join(ROOT, "conf/systemd/hsdo.default"), "utf8")) };
}

/** The real `hsdo config --json` for a unit. */
async function unitConfig(role: "server" | "client"): Promise<Map<string, unknown>> {
  const { args, env } = unitInvocation(role);
  const r = await runHsdo(["config", "--json", ...args], env);
  assert.equal(r.code, 0, `hsdo config ${args.join(" ")} with conf/systemd/hsdo.default exits 0: ${r.stderr}`);
  return new Map((JSON.parse(r.stdout) as Row[]).map((row) => [row.key, row.value]));
}

/** The server-template line of each backend, as the real `hsdo haproxy-config` prints them for a unit. */
async function generatedTemplates(): Promise<Map<string, string>> {
  const { args, env } = unitInvocation("client");
  const r = await runHsdo(["haproxy-config", ...args.filter((a) => a !== "--client")], env);
  assert.equal(r.code, 0, `hsdo haproxy-config exits 0: ${r.stderr}`);
  return new Map([...haproxyCfg(r.stdout).templates].map(([backend, t]) => [backend, t.line]));
}

for (const role of ["server", "client"] as const) {
  test(`the ${role} unit runs \`hsdo --${role}\` as an unprivileged, hardened, always-restarted service`, () => {
    const file = UNITS[role];
    const unit = parseUnit(readFileSync(join(ROOT, file), "utf8"), file);
    assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
    assert.ok(one(unit, "Unit", "Description").length > 10);
    assert.ok(words(values(unit, "Unit", "After").join(" ")).includes("network-online.target"));
    assert.ok(words(values(unit, "Unit", "Wants").join(" ")).includes("network-online.target"));

    const exec = words(one(unit, "Service", "ExecStart"));
    assert.equal(exec[0], INSTALLED_BIN, "ExecStart runs the command the release tarball installs, not a node of the distribution (Debian 12's is 18)");
    // Every file the install notes name in the installed package is one the tarball carries.
    const text = readFileSync(join(ROOT, file), "utf8");
    const named = [...text.matchAll(new RegExp(`${INSTALLED_PACKAGE.replace(/[/.]/g, "\\$&")}(\\S+)`, "g"))].map((m) => m[1]!);
    assert.ok(named.includes("README.md"), "Documentation= points at the installed README");
    for (const f of named) assert.ok(f === "README.md" || CONF_FILES.includes(f), `${INSTALLED_PACKAGE}${f} is in the release package (scripts/build.mjs CONF_FILES)`);
    assert.doesNotMatch(text, /\/usr\/bin\/node|packages\/cli\/bin|\/opt\/hsdo/, "no checkout, no distribution node");
    if (role === "server") assert.match(text, /npm install -g --prefix \/usr\/local --omit=dev \S*hsdo-<version>\.tgz/, "the install notes install the release tarball");
    assert.ok(exec.includes(`--${role}`), `ExecStart runs --${role}`);
    assert.equal(exec.filter((w) => w === "--server" || w === "--client").length, 1, "one role per unit");

    assert.equal(one(unit, "Service", "Restart"), "always");
    assert.match(one(unit, "Service", "RestartSec"), /^[1-9]\d*(ms|s)?$/, "a pause between restarts");
    assert.equal(one(unit, "Unit", "StartLimitIntervalSec"), "0", "systemd never gives up restarting");
    assert.equal(one(unit, "Service", "User"), "hsdo");
    assert.equal(one(unit, "Service", "Group"), "hsdo");
    assert.equal(one(unit, "Service", "EnvironmentFile"), "-/etc/default/hsdo", "an optional environment file");
    assert.equal(one(unit, "Service", "StateDirectory"), "hsdo");
    assert.ok(words(one(unit, "Service", "ReadWritePaths")).includes("/var/lib/hsdo"));

    const hardening: Record<string, string> = {
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      ProtectHome: "yes",
      PrivateTmp: "yes",
      PrivateDevices: "yes",
      RestrictSUIDSGID: "yes",
      CapabilityBoundingSet: "",
      ProtectProc: "invisible",
      ProcSubset: "pid",
      PrivateMounts: "yes",
      RemoveIPC: "yes",
      SystemCallErrorNumber: "EPERM",
    };
    for (const [k, v] of Object.entries(hardening)) assert.equal(one(unit, "Service", k), v, `${k}=${v}`);
    // Exit 2 is for the operator to fix (hsdo's reportError): systemd must not restart into it forever.
    assert.deepEqual(words(one(unit, "Service", "RestartPreventExitStatus")), ["2"]);
    const filters = values(unit, "Service", "SystemCallFilter");
    assert.equal(filters[0], "@system-service", "an allow list of an ordinary service's system calls first");
    const denied = filters.slice(1).flatMap((f) => (f.startsWith("~") ? words(f.slice(1)) : assert.fail(`${f} is a deny list`)));
    assert.ok(denied.includes("@privileged") && denied.includes("@debug"), `denied: ${denied.join(" ")}`);
    assert.ok(!denied.includes("@resources"), "Node raises its RLIMIT_NOFILE at start (setrlimit is in @resources)");
    assert.deepEqual(words(one(unit, "Service", "RestrictAddressFamilies")).sort(), ["AF_INET", "AF_INET6", "AF_UNIX"]);
    assert.equal(values(unit, "Service", "MemoryDenyWriteExecute").length, 0, "V8's JIT needs writable executable memory");
    assert.equal(one(unit, "Install", "WantedBy"), "multi-user.target");

    if (role === "client") {
      assert.equal(one(unit, "Service", "SupplementaryGroups"), "haproxy", "the client reaches HAProxy's socket through group haproxy");
      assert.ok(words(values(unit, "Unit", "After").join(" ")).includes("haproxy.service"));
    } else {
      assert.equal(values(unit, "Service", "SupplementaryGroups").length, 0, "the server needs no other group");
    }

    const sysusers = readFileSync(join(ROOT, "conf/systemd/hsdo.sysusers"), "utf8");
    assert.match(sysusers, /^u hsdo - "[^"]+" \/var\/lib\/hsdo \/usr\/sbin\/nologin$/m, "hsdo.sysusers creates the unit's user");
  });
}

test("systemd-analyze verify accepts both units without a warning (when systemd is installed)", (t) => {
  const which = spawnSync("sh", ["-c", "command -v systemd-analyze"], { encoding: "utf8" });
  // Without systemd the parse checks above still ran; this adds systemd's own reading.
  if (which.status !== 0) {
    assert.equal(which.stdout.trim(), "");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "hsdo-unit-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // verify wants ExecStart's program to exist: this machine has no installed hsdo, so the copies name a stand-in at the same place under dir.
  const standIn = join(dir, INSTALLED_BIN);
  mkdirSync(dirname(standIn), { recursive: true });
  writeFileSync(standIn, "#!/bin/sh\n", { mode: 0o755 });
  for (const file of Object.values(UNITS)) {
    const copy = join(dir, basename(file));
    writeFileSync(copy, readFileSync(join(ROOT, file), "utf8").replaceAll(`ExecStart=${INSTALLED_BIN} `, `ExecStart=${standIn} `));
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", copy], { encoding: "utf8" });
    assert.equal(r.status, 0, `systemd-analyze verify ${file}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), "", `systemd-analyze has no remark on ${file}`);
  }
  // It does complain about mistakes: a misspelt key must be reported.
  const badFile = join(dir, "hsdo-server.service");
  writeFileSync(badFile, readFileSync(join(ROOT, UNITS.server), "utf8").replace("Restart=always", "Restrat=always"));
  const r = spawnSync("systemd-analyze", ["verify", "--man=no", badFile], { encoding: "utf8" });
  assert.match(r.stderr, /Unknown key 'Restrat'/);
});

test("the units' configuration (conf/hsdo.yaml + conf/systemd/hsdo.default) passes `hsdo config --server` and `--client`", async () => {
  const [server, client] = await Promise.all([unitConfig("server"), unitConfig("client")]);
  assert.equal(server.get("server.mode"), "aws");
  assert.deepEqual(server.get("server.aws.asgNames"), ["vod-origin-a", "vod-origin-b"]);
  assert.equal(server.get("server.aws.lifecycleHook"), "hsdo-drain", "the hook infra/ creates when lifecycle_hook is on");
  // The client's cache must be where the unit lets it write.
  const unit = parseUnit(readFileSync(join(ROOT, UNITS.client), "utf8"), UNITS.client);
  assert.equal(client.get("client.cacheDir"), `/var/lib/${one(unit, "Service", "StateDirectory")}`);
  const backends = client.get("client.backends") as { select: string }[];
  assert.deepEqual(backends.map((b) => b.select), ["dedicated", "fallback"]);
});

interface Template {
  prefix: string;
  count: number;
  line: string;
}

function haproxyCfg(text: string): { socket: string; templates: Map<string, Template>; lines: string[] } {
  let socket = "";
  const templates = new Map<string, Template>();
  const lines: string[] = [];
  let backend: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    lines.push(line);
    const w = line.split(/\s+/);
    if (/^(global|defaults|frontend|listen|backend)$/.test(w[0]!)) backend = w[0] === "backend" ? w[1] : undefined;
    if (w[0] === "stats" && w[1] === "socket") socket = line;
    if (backend && w[0] === "server-template") {
      const m = /^1-(\d+)$/.exec(w[2] ?? "");
      assert.ok(m, `server-template ${w[1]} numbers its servers from 1`);
      templates.set(backend, { prefix: w[1]!, count: Number(m[1]), line });
    }
  }
  return { socket, templates, lines };
}

test("conf/haproxy.cfg is valid for HAProxy and has what the client unit's configuration drives", async () => {
  const file = join(ROOT, "conf/haproxy.cfg");
  const check = spawnSync(haproxyBinary(), ["-c", "-f", file], { encoding: "utf8" });
  assert.equal(check.error, undefined, `haproxy runs (${String(check.error)})`);
  assert.equal(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);

  const [client, generated] = await Promise.all([unitConfig("client"), generatedTemplates()]);
  const cfg = haproxyCfg(readFileSync(file, "utf8"));
  const socketWords = cfg.socket.split(/\s+/);
  assert.equal(socketWords[2], client.get("client.socket"), "HAProxy's socket is the client's client.socket");
  assert.match(cfg.socket, /\blevel admin\b/, "at level admin, which `set server` needs");
  assert.match(cfg.socket, /\bmode 660\b/);
  assert.match(cfg.socket, /\bgroup haproxy\b/, "owned by group haproxy, the client unit's SupplementaryGroups");

  const size = Number(client.get("size"));
  const backends = client.get("client.backends") as { name: string; prefix: string; port?: number; select: string }[];
  for (const b of backends) {
    const t = cfg.templates.get(b.name);
    assert.ok(t, `backend ${b.name} exists with a server-template`);
    assert.ok(t.count >= size, `backend ${b.name} has ${t.count} servers, at least size (${size})`);
    assert.equal(t.line, generated.get(b.name), `backend ${b.name}'s server-template is the one \`hsdo haproxy-config\` prints`);
  }
  const dedicated = backends.find((b) => b.select === "dedicated")!;
  const fallback = backends.find((b) => b.select === "fallback")!;
  assert.ok(cfg.lines.includes(`use_backend ${fallback.name} if { nbsrv(${dedicated.name}) eq 0 }`), "the fallback backend takes over when the dedicated one has no server up");
  assert.ok(cfg.lines.includes(`default_backend ${dedicated.name}`));
  assert.ok(cfg.lines.includes("hash-type consistent"), "consistent hashing, what stable slots are for");
});

// ------------------------------------------------------------------ Grafana

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid?: string };
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}

const PROMETHEUS_LABELS = ["instance", "job"];
const PROMQL_WORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"]);

test("the Grafana dashboard charts every hsdo metric, with names and labels hsdo really serves", () => {
  const dash = JSON.parse(readFileSync(join(ROOT, "conf/grafana-dashboard.json"), "utf8")) as {
    uid: string;
    title: string;
    panels: Panel[];
    templating: { list: { name: string; type: string; query: unknown }[] };
  };
  assert.ok(dash.uid && dash.title);
  const variables = new Map(dash.templating.list.map((v) => [v.name, v]));
  assert.equal(variables.get("datasource")?.type, "datasource");
  assert.equal(variables.get("datasource")?.query, "prometheus");

  const metrics = new Metrics({ processMetrics: false });
  const served = new Map<string, string[]>();
  for (const m of metrics.registry.getMetricsAsArray()) {
    const labelNames = [...((m as unknown as { labelNames?: readonly string[] }).labelNames ?? [])];
    if (String(m.type) === "histogram") {
      for (const suffix of ["_bucket", "_sum", "_count"]) served.set(`${m.name}${suffix}`, [...labelNames, ...(suffix === "_bucket" ? ["le"] : [])]);
    } else {
      served.set(m.name, labelNames);
    }
  }
  assert.ok(served.size > 10, "the registry lists hsdo's metrics");

  const panels = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  const used = new Set<string>();
  for (const p of panels) {
    assert.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24-column grid`);
    if (p.type === "row") continue;
    assert.equal(p.datasource?.uid, "${datasource}", `${p.title} uses the datasource variable`);
    assert.ok(p.targets && p.targets.length > 0, `${p.title} has queries`);
    for (const t of p.targets) {
      // The alerts panel reads Prometheus's own ALERTS series, for the rules hsdo ships.
      const alerts = /^ALERTS\{alertname=~"Hsdo\.\*", alertstate="firing"\}$/.test(t.expr);
      if (alerts) {
        const rules = readFileSync(join(ROOT, "conf/prometheus/alerts.yaml"), "utf8").match(/- alert: Hsdo\w+/g) ?? [];
        assert.ok(rules.length >= 5, `${p.title}: the rules it lists exist`);
        continue;
      }
      const names = [...t.expr.matchAll(/\bhsdo_[a-z_]+\b/g)].map((m) => m[0]);
      assert.ok(names.length > 0, `${p.title}: ${t.expr} queries an hsdo metric`);
      const labels = new Set([...PROMETHEUS_LABELS]);
      for (const n of names) {
        assert.ok(served.has(n), `${p.title}: ${n} is a metric hsdo serves (packages/cli/src/metrics.ts)`);
        served.get(n)!.forEach((l) => labels.add(l));
        used.add(n);
      }
      const groupings = [...t.expr.matchAll(/\b(?:by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(","));
      const matchers = [...t.expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]!));
      for (const l of [...groupings, ...matchers].map((s) => s.trim()).filter((s) => s && !PROMQL_WORDS.has(s))) {
        assert.ok(labels.has(l), `${p.title}: label ${l} exists on ${names.join(", ")}`);
      }
      for (const [, v] of t.expr.matchAll(/\$(\w+)/g)) {
        assert.ok(variables.has(v!) || v!.startsWith("__"), `${p.title}: $${v} is a dashboard variable`);
      }
    }
  }
  for (const name of served.keys()) {
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const charted = [...used].some((u) => u === name || u.replace(/_(bucket|sum|count)$/, "") === base);
    assert.ok(charted, `metric ${name} has a panel in conf/grafana-dashboard.json`);
  }
});

test("conf/prometheus/alerts.yaml: every rule queries metrics and labels hsdo serves; staleness is an alert, not unreadiness", () => {
  const doc = parseYaml(readFileSync(join(ROOT, "conf/prometheus/alerts.yaml"), "utf8")) as {
    groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[];
  };
  const served = new Map<string, string[]>();
  for (const m of new Metrics({ processMetrics: false }).registry.getMetricsAsArray()) {
    served.set(m.name, [...((m as unknown as { labelNames?: readonly string[] }).labelNames ?? [])]);
  }
  const rules = doc.groups.flatMap((g) => g.rules);
  assert.ok(rules.length >= 5);
  for (const r of rules) {
    assert.match(r.alert, /^Hsdo[A-Z][A-Za-z]+$/);
    assert.ok(["warning", "critical"].includes(r.labels.severity ?? ""), `${r.alert} has a severity`);
    assert.ok(r.annotations.summary && r.annotations.description, `${r.alert} says what and what to look at`);
    const names = [...r.expr.matchAll(/\bhsdo_[a-z_]+\b/g)].map((m) => m[0]);
    assert.ok(names.length > 0, `${r.alert} queries an hsdo metric`);
    for (const n of names) assert.ok(served.has(n), `${r.alert}: ${n} is a metric hsdo serves`);
    for (const m of r.expr.matchAll(/\b(?:by|without) \(([^)]*)\)/g)) {
      for (const label of (m[1] ?? "").split(",").map((l) => l.trim())) {
        assert.ok(label === "instance" || names.some((n) => served.get(n)?.includes(label)), `${r.alert}: label ${label} exists on ${names.join(", ")}`);
      }
    }
  }
  const stale = rules.find((r) => r.alert === "HsdoSnapshotStale");
  assert.match(stale?.expr ?? "", /hsdo_snapshot_age_seconds/);
});
