import { ConfigError } from "../errors.ts";
import { isPort, isSafeName } from "../validate.ts";
import { BACKEND_KEYS } from "./schema.ts";
import type { BackendConfig, Selection } from "./types.ts";

/** Backends as written (pool may be unset: it defaults to the top-level pool at assembly). */
export type RawBackend = Omit<BackendConfig, "pool"> & { pool?: string };

const SELECTIONS: readonly Selection[] = ["all", "dedicated", "fallback"];

export function parseBackends(value: unknown, label: string): RawBackend[] {
  if (!Array.isArray(value)) throw new ConfigError(label, value, "is not a list of backends (expected [{name, prefix, port, ...}])");
  return value.map((item: unknown, i) => parseBackend(item, `${label}[${i}]`));
}

export function parseBackend(item: unknown, label: string): RawBackend {
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
