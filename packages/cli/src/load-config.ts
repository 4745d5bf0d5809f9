import { existsSync, readFileSync } from "node:fs";
import { ConfigError, errorMessage, resolveConfig, type ResolvedConfig } from "@hsdo/core";

export interface ConfigFlags {
  config?: string;
  /** HSDO's env.yaml (default: conf/env.yaml when it exists). */
  hsdoEnv?: string;
  debug?: boolean;
  "log-level"?: string;
  pool?: string;
  set?: string[];
}

export const DEFAULT_CONFIG_FILE = "conf/hsdo.yaml";
/** Where HSDO reads its file: relative to the working directory, as HSDO's configuration.py opens it. */
export const DEFAULT_HSDO_ENV_FILE = "conf/env.yaml";

function readNamed(flag: string, name: string, cwd: string): { name: string; text: string } {
  const path = name.startsWith("/") ? name : `${cwd}/${name}`;
  try {
    return { name, text: readFileSync(path, "utf8") };
  } catch (err) {
    throw new ConfigError(flag, name, `cannot be read (${errorMessage(err)})`);
  }
}

/** Reads HSDO's env.yaml and hsdo's YAML file (each explicit, or at its conf/ path when present), then resolves with env and flags. */
export function loadConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ResolvedConfig {
  const name = flags.config ?? (existsSync(`${cwd}/${DEFAULT_CONFIG_FILE}`) ? DEFAULT_CONFIG_FILE : undefined);
  const file = name !== undefined ? readNamed("--config", name, cwd) : undefined;
  const envName = flags.hsdoEnv ?? (existsSync(`${cwd}/${DEFAULT_HSDO_ENV_FILE}`) ? DEFAULT_HSDO_ENV_FILE : undefined);
  const hsdoEnv = envName !== undefined ? readNamed("--hsdo-env", envName, cwd) : undefined;
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
  return resolveConfig({ hsdoEnv, file, env, flags: overrides });
}
