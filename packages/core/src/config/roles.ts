import { formatDuration } from "../duration.ts";
import { ConfigError } from "../errors.ts";
import type { ResolvedConfig } from "./load.ts";
import { labelWithEnv } from "./provenance.ts";
import type { KeyPath } from "./schema.ts";

/** Checks for `hsdo --server`: what the chosen source mode needs. */
export function checkServerConfig(resolved: ResolvedConfig): void {
  const { config, sources } = resolved;
  const mode = config.server.mode;
  const need = (path: KeyPath, ok: boolean, expected: string) => {
    if (!ok) throw new ConfigError(labelWithEnv(path, sources), resolved.values.get(path), `is required when server.mode is ${mode} (expected ${expected})`);
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
  // A client that reads once an interval would call every snapshot stale between two reads, on a healthy table.
  if (config.intervalMs > config.client.maxSnapshotAgeMs) {
    throw new ConfigError(
      labelWithEnv("interval", sources),
      formatDuration(config.intervalMs),
      `is above client.maxSnapshotAge (${formatDuration(config.client.maxSnapshotAgeMs)}): the client reads the table once an interval, ` +
        "so every snapshot would be stale between two reads; lower the interval or raise client.maxSnapshotAge (HSDO_CLIENT_MAX_SNAPSHOT_AGE)",
    );
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
