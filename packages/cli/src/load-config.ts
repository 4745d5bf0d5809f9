import { existsSync, readFileSync } from "node:fs";
import { ConfigError, errorMessage, resolveConfig, type ResolvedConfig } from "@hsdo/core";

export interface ConfigFlags {
  config?: string;
  debug?: boolean;
  "log-level"?: string;
  pool?: string;
  set?: string[];
}

export const DEFAULT_CONFIG_FILE = "conf/hsdo.yaml";

/** Reads the YAML file (explicit, or conf/hsdo.yaml when present), then resolves with env and flags. */
export function loadConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ResolvedConfig {
  let file: { name: string; text: string } | undefined;
  const name = flags.config ?? (existsSync(`${cwd}/${DEFAULT_CONFIG_FILE}`) ? DEFAULT_CONFIG_FILE : undefined);
  if (name !== undefined) {
    const path = name.startsWith("/") ? name : `${cwd}/${name}`;
    try {
      file = { name, text: readFileSync(path, "utf8") };
    } catch (err) {
      throw new ConfigError("--config", name, `cannot be read (${errorMessage(err)})`);
    }
  }
  const overrides: { path: string; value: string; flag: string }[] = [];
  if (flags.debug) overrides.push({ path: "debug", value: "true", flag: "--debug" });
  const level = flags["log-level"];
  if (level !== undefined) overrides.push({ path: "logLevel", value: level, flag: "--log-level" });
  if (flags.pool !== undefined) overrides.push({ path: "pool", value: flags.pool, flag: "--pool" });
  for (const item of flags.set ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new ConfigError("--set", item, "is not key=value (for example --set server.drain=1m)");
    const path = item.slice(0, eq).trim();
    overrides.push({ path, value: item.slice(eq + 1), flag: `--set ${path}` });
  }
  return resolveConfig({ file, env, flags: overrides });
}
