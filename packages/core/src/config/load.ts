import { parse as parseYaml } from "yaml";
import { ConfigError, errorMessage } from "../errors.ts";
import { parseDuration } from "../duration.ts";
import { isPort, isSafeName } from "../validate.ts";
import { BACKEND_KEYS, DEFAULT_BACKEND, LEGACY_BACKEND_ENV, SCHEMA, SCHEMA_BY_PATH, type KeySpec } from "./schema.ts";
import type { BackendConfig, Config, Selection } from "./types.ts";

/**
 * Configuration is resolved as layers, later wins: defaults, the YAML file,
 * environment variables, flags. This module is pure: the caller reads the
 * file and passes its text, the environment and the flags.
 */
export type ValueSource =
  | { kind: "default" }
  | { kind: "file"; file: string }
  | { kind: "env"; name: string }
  | { kind: "flag"; name: string };

export interface ConfigInput {
  file?: { name: string; text: string };
  env: Readonly<Record<string, string | undefined>>;
  /** `--set path=value` overrides, and named flags mapped to paths (e.g. `--debug` -> debug=true). */
  flags?: { path: string; value: string; flag: string }[];
}

export interface ResolvedConfig {
  config: Config;
  /** Where each key's value came from, by YAML path. */
  sources: Map<string, ValueSource>;
  /** The values by YAML path, as written by an operator (durations as text). */
  values: Map<string, unknown>;
}

const SELECTIONS: readonly Selection[] = ["all", "dedicated", "fallback"];
const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off", ""]);

export function describeSource(source: ValueSource): string {
  switch (source.kind) {
    case "default":
      return "default";
    case "file":
      return `file ${source.file}`;
    case "env":
      return `env ${source.name}`;
    case "flag":
      return `flag ${source.name}`;
  }
}

function expectedFor(spec: KeySpec): string {
  const range =
    spec.min !== undefined && spec.max !== undefined
      ? ` in ${spec.min}..${spec.max}`
      : spec.min !== undefined
        ? ` >= ${spec.min}`
        : spec.max !== undefined
          ? ` <= ${spec.max}`
          : "";
  switch (spec.kind) {
    case "int":
      return `an integer${range}`;
    case "number":
      return `a number${range}`;
    case "bool":
      return "true or false";
    case "duration":
      return `a duration such as 30s, 1m, 500ms or plain seconds${spec.min ? ` (at least ${spec.min} ms)` : ""}`;
    case "list":
      return "a list (comma-separated in the environment)";
    case "enum":
      return `one of ${(spec.values ?? []).join(", ")}`;
    case "string":
      return "a string";
    case "backends":
      return "a list of backends";
  }
}

function fail(label: string, value: unknown, spec: KeySpec): never {
  throw new ConfigError(label, spec.secret ? "(hidden)" : value, `is not valid (expected ${expectedFor(spec)})`);
}

function inRange(spec: KeySpec, n: number): boolean {
  return (spec.min === undefined || n >= spec.min) && (spec.max === undefined || n <= spec.max);
}

/** Turns a raw value (typed from YAML, or text from env/flags) into the key's kind, or throws a ConfigError. */
function coerce(spec: KeySpec, raw: unknown, label: string, fromText: boolean): unknown {
  if (raw === null || (fromText && raw === "" && spec.optional)) {
    if (spec.optional) return null;
    if (spec.kind === "list") return [];
    if (spec.kind === "string") return "";
    fail(label, raw, spec);
  }
  switch (spec.kind) {
    case "string":
      if (typeof raw === "string") return raw.trim();
      if (typeof raw === "number" && !fromText) return String(raw);
      return fail(label, raw, spec);
    case "int": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || !inRange(spec, n)) fail(label, raw, spec);
      return n;
    }
    case "number": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
      if (!Number.isFinite(n) || !inRange(spec, n)) fail(label, raw, spec);
      return n;
    }
    case "bool": {
      if (typeof raw === "boolean") return raw;
      if (typeof raw === "string") {
        const t = raw.trim().toLowerCase();
        if (TRUE.has(t)) return true;
        if (FALSE.has(t)) return false;
      }
      return fail(label, raw, spec);
    }
    case "duration": {
      const ms = parseDuration(raw);
      if (ms === undefined || !inRange(spec, ms)) fail(label, raw, spec);
      return ms;
    }
    case "list": {
      const items = typeof raw === "string" ? raw.split(",") : Array.isArray(raw) ? raw : undefined;
      if (!items || items.some((i) => typeof i !== "string")) fail(label, raw, spec);
      return (items as string[]).map((i) => i.trim()).filter((i) => i !== "");
    }
    case "enum":
      if (typeof raw === "string" && spec.values?.includes(raw.trim())) return raw.trim();
      return fail(label, raw, spec);
    case "backends": {
      let value: unknown = raw;
      if (typeof raw === "string") {
        try {
          value = JSON.parse(raw);
        } catch (err) {
          throw new ConfigError(label, raw, `is not valid JSON (${errorMessage(err)}); expected a JSON list of backends`);
        }
      }
      return parseBackends(value, label);
    }
  }
}

/** Backends as written (pool may be unset: it defaults to the top-level pool in finish()). */
type RawBackend = Omit<BackendConfig, "pool"> & { pool?: string };

function parseBackends(value: unknown, label: string): RawBackend[] {
  if (!Array.isArray(value)) throw new ConfigError(label, value, "is not a list of backends (expected [{name, prefix, port, ...}])");
  return value.map((item: unknown, i) => parseBackend(item, `${label}[${i}]`));
}

function parseBackend(item: unknown, label: string): RawBackend {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new ConfigError(label, item, "is not a backend (expected an object with at least `name`)");
  }
  const obj = item as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!(BACKEND_KEYS as readonly string[]).includes(k)) {
      throw new ConfigError(`${label}.${k}`, obj[k], `is not a known key (expected one of ${BACKEND_KEYS.join(", ")})`);
    }
  }
  const name = obj.name;
  if (!isSafeName(name)) throw new ConfigError(`${label}.name`, name, "is not a backend name (expected [A-Za-z0-9._:-])");
  const prefix = obj.prefix ?? name;
  if (!isSafeName(prefix)) throw new ConfigError(`${label}.prefix`, prefix, "is not a server prefix (expected [A-Za-z0-9._:-])");
  const backend: RawBackend = { name, prefix, select: "all", allInFallback: false };
  if (obj.port !== undefined && obj.port !== null) {
    const port = typeof obj.port === "string" && /^\d+$/.test(obj.port) ? Number(obj.port) : obj.port;
    if (!isPort(port)) throw new ConfigError(`${label}.port`, obj.port, "is not a port (expected 1..65535, or unset for the target's own port)");
    backend.port = port;
  }
  if (obj.pool !== undefined) {
    const pool = typeof obj.pool === "string" ? obj.pool.trim() : obj.pool;
    if (!isSafeName(pool)) throw new ConfigError(`${label}.pool`, obj.pool, "is not a pool name (expected [A-Za-z0-9._:-])");
    backend.pool = pool;
  }
  if (obj.select !== undefined) {
    if (typeof obj.select !== "string" || !SELECTIONS.includes(obj.select as Selection)) {
      throw new ConfigError(`${label}.select`, obj.select, `is not a selection (expected one of ${SELECTIONS.join(", ")})`);
    }
    backend.select = obj.select as Selection;
  }
  if (obj.allInFallback !== undefined) {
    if (typeof obj.allInFallback !== "boolean") throw new ConfigError(`${label}.allInFallback`, obj.allInFallback, "is not true or false");
    backend.allInFallback = obj.allInFallback;
  }
  return backend;
}

/** Flattens the YAML document to path -> value, refusing unknown keys. */
function flattenFile(doc: unknown, file: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (doc === null || doc === undefined) return out;
  const walk = (node: unknown, prefix: string) => {
    if (typeof node !== "object" || node === null || Array.isArray(node)) {
      throw new ConfigError(prefix || file, node, "is not a mapping (expected key: value lines)");
    }
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (SCHEMA_BY_PATH.has(path)) out.set(path, v);
      else if (SCHEMA.some((s) => s.path.startsWith(`${path}.`))) walk(v, path);
      else throw new ConfigError(path, v, `is not a known key in ${file} (see conf/hsdo.yaml for every key)`);
    }
  };
  walk(doc, "");
  return out;
}

function legacyBackends(env: ConfigInput["env"]): { backends: RawBackend[]; name: string } | undefined {
  const set = LEGACY_BACKEND_ENV.filter((n) => env[n] !== undefined);
  if (set.length === 0) return undefined;
  const bool = (name: string): boolean => {
    const v = env[name];
    if (v === undefined) return false;
    const t = v.trim().toLowerCase();
    if (TRUE.has(t)) return true;
    if (FALSE.has(t)) return false;
    throw new ConfigError(name, v, "is not valid (expected true or false)");
  };
  const name = env.CLIENT_HAPROXY_BACKEND_NAME?.trim() || DEFAULT_BACKEND.name;
  const rawPort = env.CLIENT_HAPROXY_BACKEND_SERVER_PORT?.trim();
  const port = rawPort === undefined || rawPort === "" ? DEFAULT_BACKEND.port : Number(rawPort);
  if (!isPort(port)) throw new ConfigError("CLIENT_HAPROXY_BACKEND_SERVER_PORT", rawPort, "is not a port (expected 1..65535)");
  const main = parseBackend(
    {
      name,
      prefix: env.CLIENT_HAPROXY_BACKEND_BASE_NAME?.trim() || name,
      port,
      select: bool("CLIENT_DEDICATED_ASG") ? "dedicated" : "all",
    },
    "CLIENT_HAPROXY_BACKEND_NAME",
  );
  const backends = [main];
  const fallback = env.CLIENT_HAPROXY_FALLBACK_BACKEND_NAME?.trim();
  if (fallback) {
    backends.push(
      parseBackend(
        {
          name: fallback,
          prefix: env.CLIENT_HAPROXY_FALLBACK_BACKEND_BASE_NAME?.trim() || fallback,
          port,
          select: "fallback",
          allInFallback: bool("CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND"),
        },
        "CLIENT_HAPROXY_FALLBACK_BACKEND_NAME",
      ),
    );
  }
  return { backends, name: set.join(",") };
}

const ALL_ENV_NAMES = new Set(SCHEMA.flatMap((s) => s.env));

export function resolveConfig(input: ConfigInput): ResolvedConfig {
  const values = new Map<string, unknown>();
  const sources = new Map<string, ValueSource>();
  for (const spec of SCHEMA) {
    values.set(spec.path, coerce(spec, spec.default, spec.path, false));
    sources.set(spec.path, { kind: "default" });
  }

  if (input.file) {
    let doc: unknown;
    try {
      doc = parseYaml(input.file.text);
    } catch (err) {
      throw new ConfigError(input.file.name, "(file)", `is not valid YAML: ${errorMessage(err).split("\n")[0]}`);
    }
    for (const [path, raw] of flattenFile(doc, input.file.name)) {
      const spec = SCHEMA_BY_PATH.get(path)!;
      values.set(path, coerce(spec, raw, path, false));
      sources.set(path, { kind: "file", file: input.file.name });
    }
  }

  // A misspelt HSDO_* variable would otherwise be ignored in silence.
  for (const name of Object.keys(input.env)) {
    if (name.startsWith("HSDO_") && !ALL_ENV_NAMES.has(name)) {
      throw new ConfigError(name, input.env[name], "is not a known variable (see `hsdo config` for every key and its variables)");
    }
  }

  const legacy = legacyBackends(input.env);
  if (legacy) {
    values.set("client.backends", legacy.backends);
    sources.set("client.backends", { kind: "env", name: legacy.name });
  }
  for (const spec of SCHEMA) {
    // HSDO's own name first, the HSDO_* name last: the more specific wins.
    for (const name of spec.env) {
      const raw = input.env[name];
      if (raw === undefined) continue;
      values.set(spec.path, coerce(spec, raw, name, true));
      sources.set(spec.path, { kind: "env", name });
    }
  }

  for (const flag of input.flags ?? []) {
    const spec = SCHEMA_BY_PATH.get(flag.path);
    if (!spec) throw new ConfigError(flag.flag, flag.path, "names no configuration key (see `hsdo config` for every key)");
    values.set(flag.path, coerce(spec, flag.value, flag.flag, true));
    sources.set(flag.path, { kind: "flag", name: flag.flag });
  }

  return { config: finish(values, sources), sources, values };
}

function labelOf(path: string, sources: Map<string, ValueSource>): string {
  const s = sources.get(path);
  return s?.kind === "env" ? `${s.name} (${path})` : s?.kind === "flag" ? `${s.name} (${path})` : path;
}

/** Builds the typed Config from the flat values and runs the checks that span several keys. */
function finish(values: Map<string, unknown>, sources: Map<string, ValueSource>): Config {
  const v = <T>(path: string) => values.get(path) as T;
  const pool = v<string>("pool");
  if (!isSafeName(pool)) throw new ConfigError(labelOf("pool", sources), pool, "is not a pool name (expected [A-Za-z0-9._:-])");
  const backends = v<RawBackend[]>("client.backends").map((b) => ({ ...b, pool: b.pool ?? pool }));
  const seen = new Set<string>();
  for (const [i, b] of backends.entries()) {
    if (seen.has(b.name)) throw new ConfigError(`client.backends[${i}].name`, b.name, "appears twice (expected one entry per HAProxy backend)");
    seen.add(b.name);
  }
  const config: Config = {
    pool,
    region: v("region"),
    size: v("size"),
    intervalMs: v("interval"),
    debug: v("debug"),
    allowLoopback: v("allowLoopback"),
    dynamodb: { table: v("dynamodb.table"), endpoint: v("dynamodb.endpoint"), embeddedPath: v("dynamodb.embeddedPath"), embeddedPort: v("dynamodb.embeddedPort") },
    http: { port: v("http.port"), host: v("http.host") },
    server: {
      mode: v("server.mode"),
      id: v("server.id"),
      aws: {
        asgNames: v("server.aws.asgNames"),
        lifecycleHook: v("server.aws.lifecycleHook"),
        ...(v<number | null>("server.aws.port") !== null ? { port: v<number>("server.aws.port") } : {}),
      },
      consul: {
        url: v("server.consul.url"),
        services: v("server.consul.services"),
        tags: v("server.consul.tags"),
        passingOnly: v("server.consul.passingOnly"),
        azMetaKey: v("server.consul.azMetaKey"),
        waitMs: v("server.consul.wait"),
        token: v("server.consul.token"),
        datacenter: v("server.consul.datacenter"),
      },
      static: { file: v("server.static.file") },
      weight: {
        min: v("server.weight.min"),
        max: v("server.weight.max"),
        step: v("server.weight.step"),
        intervalMs: v("server.weight.interval"),
      },
      drainMs: v("server.drain"),
      maxRemovalFraction: v("server.maxRemovalFraction"),
      confirmTicks: v("server.confirmTicks"),
      leaseMs: v("server.lease"),
      heartbeatMs: v("server.heartbeat"),
    },
    client: {
      socket: v("client.socket"),
      timeoutMs: v("client.timeout"),
      az: v("client.az"),
      groups: v("client.groups"),
      backends,
      cacheDir: v("client.cacheDir"),
      serverStateFile: v("client.serverStateFile"),
      maxSnapshotAgeMs: v("client.maxSnapshotAge"),
      batchBytes: v("client.batchBytes"),
    },
  };
  const w = config.server.weight;
  if (w.min > w.max) {
    throw new ConfigError(labelOf("server.weight.min", sources), w.min, `is above server.weight.max (${w.max}) (expected min <= max)`);
  }
  // The holder counts its lease as valid for 4/5 of it (the store's safety margin): two heartbeats must fit in that.
  if (config.server.heartbeatMs * 2 > config.server.leaseMs * 0.8) {
    throw new ConfigError(
      labelOf("server.heartbeat", sources),
      `${config.server.heartbeatMs}ms`,
      `is too long for server.lease (${config.server.leaseMs}ms) (expected at most 40% of the lease, so one missed heartbeat is not a lost lease)`,
    );
  }
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(config.dynamodb.table)) {
    throw new ConfigError(labelOf("dynamodb.table", sources), config.dynamodb.table, "is not a DynamoDB table name (expected 3 to 255 of [A-Za-z0-9_.-])");
  }
  if (config.dynamodb.endpoint !== "" && config.dynamodb.endpoint !== "embedded" && !/^https?:\/\/\S+$/.test(config.dynamodb.endpoint)) {
    throw new ConfigError(labelOf("dynamodb.endpoint", sources), config.dynamodb.endpoint, "is not valid (expected empty, `embedded`, or an http(s) URL)");
  }
  for (const path of ["server.aws.asgNames", "server.consul.services", "client.groups"] as const) {
    const list = path === "server.aws.asgNames" ? config.server.aws.asgNames : path === "server.consul.services" ? config.server.consul.services : config.client.groups;
    const bad = list.find((name) => !isSafeName(name));
    if (bad !== undefined) {
      throw new ConfigError(labelOf(path, sources), bad, "is not a name hsdo can store and match (expected [A-Za-z0-9._:-], at most 128 characters)");
    }
  }
  if (!/^https?:\/\/\S+$/.test(config.server.consul.url)) {
    throw new ConfigError(labelOf("server.consul.url", sources), config.server.consul.url, "is not an http(s) URL");
  }
  return config;
}

/** Checks for `hsdo --server`: what the chosen source mode needs. */
export function checkServerConfig(resolved: ResolvedConfig): void {
  const { config, sources } = resolved;
  const mode = config.server.mode;
  const need = (path: string, ok: boolean, expected: string) => {
    if (!ok) throw new ConfigError(labelWithEnv(path, sources), values(resolved, path), `is required when server.mode is ${mode} (expected ${expected})`);
  };
  if (mode === "aws") need("server.aws.asgNames", config.server.aws.asgNames.length > 0, "one or more Auto Scaling Group names");
  if (mode === "consul") need("server.consul.services", config.server.consul.services.length > 0, "one or more Consul service names");
  if (mode === "static") need("server.static.file", config.server.static.file !== "", "the path of a YAML file of targets");
}

/**
 * Whether this configuration positively describes an AWS server for `pool`
 * whose targets carry no port: `server.mode` is aws (set, or left at its
 * default while `server.aws.asgNames` is set) and `server.aws.port` is unset.
 * A configuration with nothing about the server (a client-only file) tells
 * nothing: the server may run Consul or a static file elsewhere. Consul
 * targets (port 0) and static ones (`port` is optional in the file) may lack
 * a port too, but only the data can tell: the client checks its first
 * snapshot for them (`portOmissions` in @hsdo/client).
 */
function awsTargetsWithoutPort(resolved: ResolvedConfig): boolean {
  const { config, sources } = resolved;
  if (config.server.mode !== "aws" || config.server.aws.port !== undefined) return false;
  const modeSet = sources.get("server.mode")?.kind !== "default";
  return modeSet || config.server.aws.asgNames.length > 0;
}

/** Checks for `hsdo --client`: backends that can be selected, and whose port can be known. */
export function checkClientConfig(resolved: ResolvedConfig): void {
  const { config, sources } = resolved;
  if (config.client.backends.length === 0) {
    throw new ConfigError("client.backends", [], "is empty (expected at least one HAProxy backend to drive)");
  }
  const hasIdentity = config.client.groups.length > 0 || config.client.az !== "";
  for (const [i, b] of config.client.backends.entries()) {
    if (b.select === "dedicated" && !hasIdentity) {
      throw new ConfigError(
        `client.backends[${i}].select`,
        b.select,
        "needs this node's groups or AZ (set client.groups / CLIENT_ASG_NAMES, or client.az / HSDO_CLIENT_AZ)",
      );
    }
    if (b.select === "fallback" && !b.allInFallback && !hasIdentity) {
      throw new ConfigError(
        `client.backends[${i}].select`,
        b.select,
        "needs this node's groups or AZ to know the others (set CLIENT_ASG_NAMES or client.az), or allInFallback: true",
      );
    }
    // Only the server of `pool` is described here; a backend of another pool is fed by a server configured elsewhere.
    if (b.port === undefined && b.pool === config.pool && awsTargetsWithoutPort(resolved)) {
      const from = sources.get("client.backends");
      const where = from?.kind === "env" ? ` (set by ${from.name})` : from?.kind === "file" ? ` (in ${from.file})` : "";
      throw new ConfigError(
        `client.backends[${i}].port`,
        undefined,
        `must be set for backend ${b.name}${where}: its pool ${b.pool} is listed from AWS (server.mode: aws) and ` +
          "server.aws.port is unset, so its targets carry no port and every server would be unusable; " +
          `add the port the instances listen on to that backend (${from?.kind === "env" ? `\`"port": 8080\` in its JSON object` : "`port: 8080` under its `- name:` line"}), ` +
          "or set `server.aws.port: 8080` (HSDO_SERVER_AWS_PORT) so the server stores it with every target",
      );
    }
  }
}

function values(resolved: ResolvedConfig, path: string): unknown {
  return resolved.values.get(path);
}

/** A key with the variables an operator could set it with, for errors about missing values. */
function labelWithEnv(path: string, sources: Map<string, ValueSource>): string {
  const spec = SCHEMA_BY_PATH.get(path);
  const s = sources.get(path);
  if (s?.kind === "env") return `${s.name} (${path})`;
  return spec?.env[0] ? `${path} (${spec.env[0]})` : path;
}
