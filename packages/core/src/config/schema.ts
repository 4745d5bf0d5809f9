/**
 * Every configuration key: its YAML path, kind, default, the environment
 * variables that set it (HSDO's own names first, kept with their meaning,
 * then the `HSDO_*` name), and the one-line documentation printed by
 * `hsdo config` and mirrored in conf/hsdo.yaml and the README.
 *
 * Durations are written `30s`/`1m`/plain seconds and land in the Config as
 * `<key>Ms` milliseconds.
 *
 * This is the one description of the keys: KeyPath and each key's value
 * type are derived from it. Adding a key takes its entry here (with its
 * doc), its field in types.ts and its read in assemble.ts (the compiler
 * checks the read against the field; load.test.ts fails while a key is not
 * read), then `node --import tsx scripts/config-doc.ts` for conf/hsdo.yaml
 * and the README (test/cli-config.test.ts fails while they are stale).
 */
import type { RawBackend } from "./backends.ts";

export type KeyKind = "string" | "int" | "number" | "bool" | "duration" | "list" | "enum" | "backends";

export interface KeySpec {
  path: string;
  kind: KeyKind;
  default: unknown;
  env: readonly string[];
  doc: string;
  min?: number;
  max?: number;
  values?: readonly string[];
  /** Value may be unset (null): optional ports. */
  optional?: boolean;
  /** Never printed in full (tokens). */
  secret?: boolean;
}

/** The `HSDO_*` name of a path: `server.weight.min` -> `HSDO_SERVER_WEIGHT_MIN`. */
export function hsdoEnvName(path: string): string {
  return `HSDO_${path
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/\./g, "_")
    .toUpperCase()}`;
}

type KeyInput = Omit<KeySpec, "env"> & { legacy?: readonly string[]; extraEnv?: readonly string[] };

/** A schema entry; `const` keeps its path, kind and values literal, so the types below can be derived from them. */
function key<const S extends KeyInput>(spec: S): KeySpec & Omit<S, "legacy" | "extraEnv"> {
  const { legacy = [], extraEnv = [], ...rest } = spec;
  return { ...rest, env: [...legacy, ...extraEnv, hsdoEnvName(spec.path)] };
}

export const DEFAULT_BACKEND = {
  name: "http-backend",
  prefix: "http-backend",
  port: 80,
  select: "all",
  allInFallback: false,
} as const;

export const SCHEMA = [
  key({ path: "pool", kind: "string", default: "default", doc: "Name of the pool (one list of slots, one service) in the table." }),
  key({
    path: "size",
    kind: "int",
    default: 10,
    min: 1,
    max: 5000,
    legacy: ["HAPROXY_BACKEND_SERVERS_LIST_SIZE"],
    doc: "Number of slots; HAProxy's server-template needs at least this many servers.",
  }),
  key({
    path: "interval",
    kind: "duration",
    default: "1s",
    min: 100,
    legacy: ["INTERVAL"],
    doc: "Time between two ticks of the server and of the client (HSDO: 1 s; a client tick costs half a read unit when the pool did not move).",
  }),
  key({ path: "debug", kind: "bool", default: false, legacy: ["DEBUG"], doc: "Log debug events." }),
  key({
    path: "logLevel",
    kind: "enum",
    default: "info",
    values: ["debug", "info", "warn", "error"],
    doc: "Least severe events logged (`--log-level`); `debug: true` (DEBUG, --debug) means debug. SIGHUP re-reads it.",
  }),
  key({
    path: "allowLoopback",
    kind: "bool",
    default: false,
    doc: "Allow loopback targets (127.0.0.0/8, ::1), for local setups only: off, the server publishes and the client applies none. Link-local (169.254.169.254, the instance metadata service), unspecified, multicast and broadcast addresses are never targets.",
  }),
  key({
    path: "region",
    kind: "string",
    default: "",
    legacy: ["AWS_DEFAULT_REGION"],
    doc: "AWS region when AWS_REGION is unset; empty leaves it to the SDK's own resolution.",
  }),

  key({ path: "dynamodb.table", kind: "string", default: "hsdo", legacy: ["DYNAMODB_TABLE_NAME"], doc: "DynamoDB table name." }),
  key({
    path: "dynamodb.endpoint",
    kind: "string",
    default: "",
    doc: "Empty: the SDK's endpoint (AWS_ENDPOINT_URL_DYNAMODB works); `embedded`: in-process DynamoDB (dynalite); or a URL.",
  }),
  key({
    path: "dynamodb.embeddedPath",
    kind: "string",
    default: "",
    doc: "With `endpoint: embedded`: directory the data is persisted in; empty keeps it in memory.",
  }),
  key({
    path: "dynamodb.embeddedPort",
    kind: "int",
    default: 0,
    min: 0,
    max: 65535,
    doc: "With `endpoint: embedded`: port it listens on (127.0.0.1), so `hsdo status` can read it from another shell; 0 picks a free one.",
  }),

  key({
    path: "http.port",
    kind: "int",
    default: 6789,
    min: 0,
    max: 65535,
    legacy: ["EXPORTER_PORT"],
    doc: "Port of /metrics, /healthz and /readyz; 0 turns the HTTP server off.",
  }),
  key({
    path: "http.host",
    kind: "string",
    default: "0.0.0.0",
    extraEnv: ["HSDO_METRICS_HOST"],
    doc: "Bind address of the HTTP server.",
  }),

  key({
    path: "server.mode",
    kind: "enum",
    default: "aws",
    values: ["aws", "consul", "static"],
    legacy: ["SERVER_MODE"],
    doc: "Where targets are listed: AWS Auto Scaling Groups, Consul, or a static YAML file.",
  }),
  key({ path: "server.id", kind: "string", default: "", doc: "This server's name in the lease; empty: hostname and pid." }),
  key({
    path: "server.aws.asgNames",
    kind: "list",
    default: [],
    legacy: ["SERVER_ASG_NAMES"],
    doc: "Auto Scaling Groups whose instances are targets (comma-separated in the environment).",
  }),
  key({
    path: "server.aws.lifecycleHook",
    kind: "string",
    default: "",
    doc: "Name of a termination lifecycle hook to complete (CONTINUE) once a leaving instance is drained.",
  }),
  key({
    path: "server.aws.pollInterval",
    kind: "duration",
    default: "5s",
    min: 0,
    doc: "Time between two DescribeAutoScalingGroups calls (leader and standbys alike): ticks in between reuse the last answer, so one-second ticks do not make one call per second per server; 0 asks at every tick, as HSDO did. Consul and static sources are not affected.",
  }),
  key({
    path: "server.aws.port",
    kind: "int",
    default: null,
    optional: true,
    min: 1,
    max: 65535,
    doc: "Port stored with ASG targets; unset leaves it to each client backend's port, and then `hsdo --client` refuses a backend of this pool without `port`.",
  }),
  key({
    path: "server.consul.url",
    kind: "string",
    default: "http://127.0.0.1:8500",
    legacy: ["SERVER_CONSUL_API_URL"],
    doc: "Consul HTTP API address.",
  }),
  key({
    path: "server.consul.services",
    kind: "list",
    default: [],
    legacy: ["SERVER_CONSUL_SERVICE_NAME"],
    doc: "Consul services whose instances are targets.",
  }),
  key({ path: "server.consul.tags", kind: "list", default: [], doc: "Only instances carrying all these tags." }),
  key({ path: "server.consul.passingOnly", kind: "bool", default: true, doc: "Only instances whose checks all pass are ready." }),
  key({ path: "server.consul.azMetaKey", kind: "string", default: "az", doc: "Node meta key, then service meta key, holding the AZ." }),
  key({ path: "server.consul.wait", kind: "duration", default: "30s", min: 1000, max: 600_000, doc: "Blocking query wait time." }),
  key({
    path: "server.consul.token",
    kind: "string",
    default: "",
    secret: true,
    extraEnv: ["CONSUL_HTTP_TOKEN"],
    doc: "Consul ACL token (never printed).",
  }),
  key({ path: "server.consul.datacenter", kind: "string", default: "", doc: "Consul datacenter; empty: the agent's." }),
  key({ path: "server.static.file", kind: "string", default: "", doc: "YAML file of targets for `mode: static`, re-read on change." }),
  key({
    path: "server.weight.min",
    kind: "int",
    default: 1,
    min: 0,
    max: 256,
    legacy: ["SERVER_HAPROXY_BACKEND_SERVER_MIN_WEIGHT"],
    doc: "Weight of a new target.",
  }),
  key({
    path: "server.weight.max",
    kind: "int",
    default: 10,
    min: 1,
    max: 256,
    legacy: ["SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT"],
    doc: "Weight a target ramps up to.",
  }),
  key({
    path: "server.weight.step",
    kind: "int",
    default: 1,
    min: 1,
    max: 256,
    legacy: ["SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT"],
    doc: "Weight added at every ramp interval.",
  }),
  key({
    path: "server.weight.interval",
    kind: "duration",
    default: "30s",
    min: 0,
    legacy: ["SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL"],
    doc: "Time between two ramp steps.",
  }),
  key({
    path: "server.drain",
    kind: "duration",
    default: "30s",
    min: 0,
    doc: "How long a leaving target stays in `drain` (no new sessions) before its slot is freed.",
  }),
  key({
    path: "server.maxRemovalFraction",
    kind: "number",
    default: 0.5,
    min: 0,
    max: 1,
    doc: "Safety valve: a source answer that would remove more than this fraction of live targets at once is held (see confirmTicks).",
  }),
  key({
    path: "server.confirmTicks",
    kind: "int",
    default: 3,
    min: 1,
    max: 1000,
    doc: "A held answer is applied once the same answer has repeated this many ticks in a row.",
  }),
  key({
    path: "server.lease",
    kind: "duration",
    default: "15s",
    min: 1000,
    doc: "Leader lease: a standby takes over after seeing it unrenewed this long.",
  }),
  key({
    path: "server.heartbeat",
    kind: "duration",
    default: "3s",
    min: 100,
    doc: "How often the leader renews its lease (well below `server.lease`).",
  }),

  key({
    path: "client.socket",
    kind: "string",
    default: "/var/run/haproxy/admin.sock",
    legacy: ["CLIENT_HAPROXY_SOCKET_PATH"],
    doc: "HAProxy Runtime API: a unix socket path, or ipv4@host:port.",
  }),
  key({ path: "client.timeout", kind: "duration", default: "5s", min: 100, doc: "Timeout of one Runtime API exchange." }),
  key({
    path: "client.az",
    kind: "string",
    default: "",
    doc: "This node's AZ for `dedicated` backends; `auto` reads it from the EC2 instance metadata service.",
  }),
  key({
    path: "client.groups",
    kind: "list",
    default: [],
    legacy: ["CLIENT_ASG_NAMES"],
    doc: "This node's groups (ASG names, Consul services) for `dedicated` backends.",
  }),
  key({
    path: "client.backends",
    kind: "backends",
    default: [DEFAULT_BACKEND],
    doc: "HAProxy backends to drive: name, prefix, port (unset: the target's own port, which ASG targets only have with server.aws.port), pool, select (all|dedicated|fallback), allInFallback. JSON in the environment; HSDO's CLIENT_HAPROXY_* variables build it too.",
  }),
  key({
    path: "client.cacheDir",
    kind: "string",
    default: "/var/lib/hsdo",
    doc: "Directory of the last good snapshot, used at start-up when DynamoDB cannot be read; empty: no cache.",
  }),
  key({
    path: "client.serverStateFile",
    kind: "string",
    default: "/var/lib/hsdo/haproxy-server-state",
    doc: "HAProxy server-state file, rewritten after every apply, so a reload or restart starts where the last apply left (HAProxy needs `server-state-file` and `load-server-state-from-file global`: see `hsdo haproxy-config`); empty: none.",
  }),
  key({
    path: "client.maxSnapshotAge",
    kind: "duration",
    default: "60s",
    min: 1000,
    doc: "A table not read successfully for this long is stale: a warning in /readyz, an alert on hsdo_snapshot_age_seconds, and unready only at /readyz?strict (HAProxy keeps its state).",
  }),
  key({
    path: "client.batchBytes",
    kind: "int",
    default: 16000,
    min: 512,
    max: 1_048_576,
    doc: "Largest batch of Runtime API commands sent at once (keep below HAProxy's tune.bufsize).",
  }),
] as const satisfies readonly KeySpec[];

/** Every key's YAML path: a path that is not in SCHEMA does not compile. */
export type KeyPath = (typeof SCHEMA)[number]["path"];

/** What a key of each kind holds once coerced (durations in milliseconds). */
export interface KindValue {
  string: string;
  int: number;
  number: number;
  bool: boolean;
  duration: number;
  list: string[];
  enum: string;
  /** Backends as written: `pool` may be unset until assembly fills in the top-level pool. */
  backends: RawBackend[];
}

type SpecOf<P extends KeyPath> = Extract<(typeof SCHEMA)[number], { path: P }>;
type ValueOfSpec<S> =
  | (S extends { kind: "enum"; values: readonly (infer V)[] } ? V : S extends { kind: infer K extends KeyKind } ? KindValue[K] : never)
  | (S extends { optional: true } ? null : never);

/** Every key's coerced value by path (an optional key may be null: unset). */
export type ConfigValues = { [P in KeyPath]: ValueOfSpec<SpecOf<P>> };

/** Legacy HSDO variables that build `client.backends` (see legacy.ts). */
export const LEGACY_BACKEND_ENV = [
  "CLIENT_HAPROXY_BACKEND_LIST",
  "CLIENT_HAPROXY_BACKEND_NAME",
  "CLIENT_HAPROXY_BACKEND_BASE_NAME",
  "CLIENT_HAPROXY_BACKEND_SERVER_PORT",
  "CLIENT_DEDICATED_ASG",
  "CLIENT_HAPROXY_FALLBACK_BACKEND_NAME",
  "CLIENT_HAPROXY_FALLBACK_BACKEND_BASE_NAME",
  "CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND",
] as const;

export const BACKEND_KEYS = ["name", "prefix", "port", "pool", "select", "allInFallback"] as const;

export const SCHEMA_BY_PATH: ReadonlyMap<string, KeySpec> = new Map(SCHEMA.map((s): [string, KeySpec] => [s.path, s]));
