import { parse as parseYaml } from "yaml";
import { ConfigError, errorMessage } from "../errors.ts";
import { isPort, isSafeName } from "../validate.ts";
import { parseBackend, type RawBackend } from "./backends.ts";
import { parseBoolText } from "./coerce.ts";
import { DEFAULT_BACKEND, LEGACY_BACKEND_ENV } from "./schema.ts";

/** HSDO's variables by name: text from the environment, or YAML values from HSDO's conf/env.yaml. */
export type LegacyVars = Readonly<Record<string, unknown>>;

/**
 * HSDO's names that do not map to one key: the CLIENT_HAPROXY_* variables
 * (and CLIENT_DEDICATED_ASG, CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND) that
 * together build `client.backends`, as HSDO's client drives them:
 *
 * - the main backends: CLIENT_HAPROXY_BACKEND_LIST (HSDO's latest, a
 *   mapping `{<backend>: {baseName, serverPort}}`, YAML or JSON text in the
 *   environment) when set, else CLIENT_HAPROXY_BACKEND_NAME/BASE_NAME/
 *   SERVER_PORT (HSDO before the list; the list ignores them, as HSDO does);
 *   `dedicated` with CLIENT_DEDICATED_ASG, else `all`;
 * - the fallback backend (CLIENT_HAPROXY_FALLBACK_*, at
 *   CLIENT_HAPROXY_BACKEND_SERVER_PORT), only when HSDO puts servers in it:
 *   the others with CLIENT_DEDICATED_ASG, every one with
 *   CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND.
 *
 * Undefined when none of them is set; `names` lists those that are, as the
 * value's source. `label` names a variable in errors (its file, for env.yaml).
 */
export function legacyBackends(vars: LegacyVars, label: (name: string) => string = (n) => n): { backends: RawBackend[]; names: string[] } | undefined {
  const names = LEGACY_BACKEND_ENV.filter((n) => vars[n] !== undefined);
  if (names.length === 0) return undefined;
  const text = (name: string): string | undefined => {
    const v = vars[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v.trim();
    if (typeof v === "number") return String(v);
    throw new ConfigError(label(name), v, "is not valid (expected a name)");
  };
  const bool = (name: string): boolean => {
    const v = vars[name];
    if (v === undefined || v === null) return false;
    const b = typeof v === "boolean" ? v : typeof v === "string" ? parseBoolText(v) : undefined;
    if (b === undefined) throw new ConfigError(label(name), v, "is not valid (expected true or false)");
    return b;
  };
  const port = (name: string, raw: unknown, fallback: number): number => {
    if (raw === undefined || raw === null || raw === "") return fallback;
    const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!isPort(n)) throw new ConfigError(name, raw, "is not a port (expected 1..65535)");
    return n;
  };
  const serverPort = port(label("CLIENT_HAPROXY_BACKEND_SERVER_PORT"), vars.CLIENT_HAPROXY_BACKEND_SERVER_PORT, DEFAULT_BACKEND.port);
  const dedicated = bool("CLIENT_DEDICATED_ASG");
  const select = dedicated ? "dedicated" : "all";

  let backends: RawBackend[];
  const list = vars.CLIENT_HAPROXY_BACKEND_LIST;
  if (list !== undefined && list !== null && list !== "") {
    backends = backendList(list, label("CLIENT_HAPROXY_BACKEND_LIST"), serverPort, select);
  } else {
    const name = text("CLIENT_HAPROXY_BACKEND_NAME") || DEFAULT_BACKEND.name;
    backends = [
      parseBackend(
        { name, prefix: text("CLIENT_HAPROXY_BACKEND_BASE_NAME") || name, port: serverPort, select },
        label("CLIENT_HAPROXY_BACKEND_NAME"),
      ),
    ];
  }
  const allInFallback = bool("CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND");
  const fallback = text("CLIENT_HAPROXY_FALLBACK_BACKEND_NAME");
  if (fallback && (dedicated || allInFallback)) {
    if (backends.some((b) => b.name === fallback)) {
      throw new ConfigError(label("CLIENT_HAPROXY_FALLBACK_BACKEND_NAME"), fallback, "is also a main backend (expected another HAProxy backend)");
    }
    backends.push(
      parseBackend(
        { name: fallback, prefix: text("CLIENT_HAPROXY_FALLBACK_BACKEND_BASE_NAME") || fallback, port: serverPort, select: "fallback", allInFallback },
        label("CLIENT_HAPROXY_FALLBACK_BACKEND_NAME"),
      ),
    );
  }
  return { backends, names };
}

const LIST_KEYS = ["baseName", "serverPort"];

/** CLIENT_HAPROXY_BACKEND_LIST: `{<backend>: {baseName, serverPort}}`, a mapping or its YAML/JSON text. */
function backendList(raw: unknown, label: string, serverPort: number, select: "all" | "dedicated"): RawBackend[] {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = parseYaml(raw);
    } catch (err) {
      throw new ConfigError(label, raw, `is not valid YAML or JSON (${errorMessage(err).split("\n")[0]}); expected {<backend>: {baseName, serverPort}}`);
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || Object.keys(value).length === 0) {
    throw new ConfigError(label, raw, "is not a mapping of backends (expected {<backend>: {baseName: <prefix>, serverPort: <port>}}, at least one)");
  }
  return Object.entries(value as Record<string, unknown>).map(([name, entry]) => {
    const at = `${label}.${name}`;
    if (!isSafeName(name)) throw new ConfigError(label, name, "names a backend hsdo cannot drive (expected [A-Za-z0-9._:-])");
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw new ConfigError(at, entry, "is not a mapping (expected {baseName: <prefix>, serverPort: <port>})");
    }
    const e = entry as Record<string, unknown>;
    const unknown = Object.keys(e).find((k) => !LIST_KEYS.includes(k));
    if (unknown !== undefined) throw new ConfigError(`${at}.${unknown}`, e[unknown], `is not a known key (expected ${LIST_KEYS.join(", ")})`);
    if (typeof e.baseName !== "string" || !isSafeName(e.baseName.trim())) {
      throw new ConfigError(`${at}.baseName`, e.baseName, "is not a server-template prefix (expected [A-Za-z0-9._:-])");
    }
    const p = e.serverPort;
    const n = p === undefined || p === null ? serverPort : typeof p === "number" ? p : typeof p === "string" && /^\s*\d+\s*$/.test(p) ? Number(p) : NaN;
    if (!isPort(n)) throw new ConfigError(`${at}.serverPort`, p, "is not a port (expected 1..65535)");
    return parseBackend({ name, prefix: e.baseName.trim(), port: n, select }, at);
  });
}
