import { ConfigError } from "../errors.ts";
import { isSafeName } from "../validate.ts";
import { labelOf, type ValueSource } from "./provenance.ts";
import type { ConfigValues, KeyPath } from "./schema.ts";
import type { Config } from "./types.ts";

/** Reads one coerced value: its path must be a schema key, and its type is the key's. */
export type ReadValue = <P extends KeyPath>(path: P) => ConfigValues[P];

/**
 * Builds the typed Config from the values by path. Every read names a
 * schema key (a misspelt path does not compile) and every field is checked
 * against Config by the compiler; load.test.ts checks that every schema key
 * is read here and that no leaf of the result is undefined.
 */
export function assembleConfig(read: ReadValue): Config {
  const pool = read("pool");
  const awsPort = read("server.aws.port");
  return {
    pool,
    region: read("region"),
    size: read("size"),
    intervalMs: read("interval"),
    debug: read("debug"),
    logLevel: read("logLevel"),
    allowLoopback: read("allowLoopback"),
    dynamodb: {
      table: read("dynamodb.table"),
      endpoint: read("dynamodb.endpoint"),
      embeddedPath: read("dynamodb.embeddedPath"),
      embeddedPort: read("dynamodb.embeddedPort"),
    },
    http: { port: read("http.port"), host: read("http.host") },
    server: {
      mode: read("server.mode"),
      id: read("server.id"),
      aws: {
        asgNames: read("server.aws.asgNames"),
        lifecycleHook: read("server.aws.lifecycleHook"),
        pollIntervalMs: read("server.aws.pollInterval"),
        ...(awsPort !== null ? { port: awsPort } : {}),
      },
      consul: {
        url: read("server.consul.url"),
        services: read("server.consul.services"),
        tags: read("server.consul.tags"),
        passingOnly: read("server.consul.passingOnly"),
        azMetaKey: read("server.consul.azMetaKey"),
        waitMs: read("server.consul.wait"),
        token: read("server.consul.token"),
        datacenter: read("server.consul.datacenter"),
      },
      static: { file: read("server.static.file") },
      weight: {
        min: read("server.weight.min"),
        max: read("server.weight.max"),
        step: read("server.weight.step"),
        intervalMs: read("server.weight.interval"),
      },
      drainMs: read("server.drain"),
      maxRemovalFraction: read("server.maxRemovalFraction"),
      confirmTicks: read("server.confirmTicks"),
      leaseMs: read("server.lease"),
      heartbeatMs: read("server.heartbeat"),
    },
    client: {
      socket: read("client.socket"),
      timeoutMs: read("client.timeout"),
      az: read("client.az"),
      groups: read("client.groups"),
      // A backend without its own pool drives the top-level one.
      backends: read("client.backends").map((b) => ({ ...b, pool: b.pool ?? pool })),
      cacheDir: read("client.cacheDir"),
      serverStateFile: read("client.serverStateFile"),
      maxSnapshotAgeMs: read("client.maxSnapshotAge"),
      batchBytes: read("client.batchBytes"),
    },
  };
}

/** The checks that span several keys, or that a key's kind cannot express; `sources` names the variable or flag in errors. */
export function checkConfig(config: Config, sources: ReadonlyMap<string, ValueSource>): void {
  if (!isSafeName(config.pool)) throw new ConfigError(labelOf("pool", sources), config.pool, "is not a pool name (expected [A-Za-z0-9._:-])");
  const seen = new Set<string>();
  for (const [i, b] of config.client.backends.entries()) {
    if (seen.has(b.name)) throw new ConfigError(`client.backends[${i}].name`, b.name, "appears twice (expected one entry per HAProxy backend)");
    seen.add(b.name);
  }
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
  const names: [KeyPath, string[]][] = [
    ["server.aws.asgNames", config.server.aws.asgNames],
    ["server.consul.services", config.server.consul.services],
    ["client.groups", config.client.groups],
  ];
  for (const [path, list] of names) {
    const bad = list.find((name) => !isSafeName(name));
    if (bad !== undefined) {
      throw new ConfigError(labelOf(path, sources), bad, "is not a name hsdo can store and match (expected [A-Za-z0-9._:-], at most 128 characters)");
    }
  }
  if (!/^https?:\/\/\S+$/.test(config.server.consul.url)) {
    throw new ConfigError(labelOf("server.consul.url", sources), config.server.consul.url, "is not an http(s) URL");
  }
}
