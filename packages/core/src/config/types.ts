/**
 * The effective configuration, after defaults, file, environment and flags
 * were merged and validated (see schema.ts for every key, its variables and
 * default). Durations are milliseconds.
 */
import type { ConfigValues } from "./schema.ts";

/** The values of `server.mode` in schema.ts. */
export type ServerMode = ConfigValues["server.mode"];
export type Selection = "all" | "dedicated" | "fallback";

export interface WeightConfig {
  min: number;
  max: number;
  step: number;
  intervalMs: number;
}

export interface AwsSourceConfig {
  asgNames: string[];
  /** Lifecycle hook completed (CONTINUE) once a terminating instance is drained; "" for none. */
  lifecycleHook: string;
  /** Least time between two DescribeAutoScalingGroups calls; ticks in between reuse the last answer (0: every tick). */
  pollIntervalMs?: number;
  /** Port stored with ASG targets; undefined leaves it to each client backend's port. */
  port?: number;
}

export interface ConsulSourceConfig {
  url: string;
  services: string[];
  tags: string[];
  passingOnly: boolean;
  /** Node meta key, then service meta key, holding the target's AZ. */
  azMetaKey: string;
  waitMs: number;
  token: string;
  datacenter: string;
}

export interface StaticSourceConfig {
  file: string;
}

export interface ServerConfig {
  mode: ServerMode;
  id: string;
  aws: AwsSourceConfig;
  consul: ConsulSourceConfig;
  static: StaticSourceConfig;
  weight: WeightConfig;
  drainMs: number;
  maxRemovalFraction: number;
  confirmTicks: number;
  leaseMs: number;
  heartbeatMs: number;
}

export interface BackendConfig {
  /** HAProxy backend name. */
  name: string;
  /** server-template prefix: servers are `<prefix><slot>`. */
  prefix: string;
  /** Port for every server of this backend; undefined means the target's own port. */
  port?: number;
  pool: string;
  select: Selection;
  /** fallback only: every target, not only those outside the client's groups/AZ. */
  allInFallback: boolean;
}

export interface ClientConfig {
  /** Unix socket path, or `ipv4@host:port`. */
  socket: string;
  timeoutMs: number;
  /** This node's AZ; "auto" reads it from the EC2 instance metadata service; "" for none. */
  az: string;
  /** This node's groups (ASG names / Consul services) for `dedicated` backends. */
  groups: string[];
  backends: BackendConfig[];
  /** Directory of the last-good-snapshot cache files; "" disables the cache. */
  cacheDir: string;
  /** HAProxy server-state file the client keeps current; "" for none. */
  serverStateFile: string;
  /** A table not read for this long is stale (a warning; unready only at /readyz?strict). */
  maxSnapshotAgeMs: number;
  /** Size limit of one batch of Runtime API commands (below HAProxy's tune.bufsize). */
  batchBytes: number;
}

export interface DynamoConfig {
  table: string;
  /** "" for the SDK's own resolution, "embedded" for in-process dynalite, or a URL. */
  endpoint: string;
  /** embedded only: directory to persist the data in; "" keeps it in memory. */
  embeddedPath: string;
  /** embedded only: port on 127.0.0.1; 0 picks a free one. */
  embeddedPort: number;
}

export interface HttpConfig {
  port: number;
  host: string;
}

export interface Config {
  pool: string;
  /** AWS region for every client when AWS_REGION is unset ("" leaves it to the SDK). */
  region: string;
  size: number;
  intervalMs: number;
  debug: boolean;
  /** Least severe events logged; `debug` true means "debug" whatever this says. */
  logLevel: "debug" | "info" | "warn" | "error";
  /**
   * Loopback targets are allowed (local setups, the demo, the tests): both
   * the server (targetProblems) and the client (desiredServers) refuse them
   * otherwise. Nothing else that targetAddressProblem refuses can be allowed.
   */
  allowLoopback: boolean;
  dynamodb: DynamoConfig;
  http: HttpConfig;
  server: ServerConfig;
  client: ClientConfig;
}
