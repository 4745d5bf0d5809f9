import { ConfigError } from "../errors.ts";
import { isPort } from "../validate.ts";
import { parseBackend, type RawBackend } from "./backends.ts";
import { parseBoolText } from "./coerce.ts";
import { DEFAULT_BACKEND, LEGACY_BACKEND_ENV } from "./schema.ts";

/**
 * HSDO's names that do not map to one key: the CLIENT_HAPROXY_* variables
 * (and CLIENT_DEDICATED_ASG, CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND) that
 * together build `client.backends`, a main backend and an optional fallback.
 * Undefined when none of them is set; `name` lists those that are, as the
 * value's source.
 */
export function legacyBackends(env: Readonly<Record<string, string | undefined>>): { backends: RawBackend[]; name: string } | undefined {
  const set = LEGACY_BACKEND_ENV.filter((n) => env[n] !== undefined);
  if (set.length === 0) return undefined;
  const bool = (name: string): boolean => {
    const v = env[name];
    if (v === undefined) return false;
    const b = parseBoolText(v);
    if (b === undefined) throw new ConfigError(name, v, "is not valid (expected true or false)");
    return b;
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
