import { parse as parseYaml } from "yaml";
import { ConfigError, errorMessage } from "../errors.ts";
import { assembleConfig, checkConfig } from "./assemble.ts";
import { coerce } from "./coerce.ts";
import { legacyBackends } from "./legacy.ts";
import type { ValueSource } from "./provenance.ts";
import { LEGACY_BACKEND_ENV, SCHEMA, SCHEMA_BY_PATH, type ConfigValues, type KeyPath } from "./schema.ts";
import type { Config } from "./types.ts";

export { describeSource, type ValueSource } from "./provenance.ts";
export { checkClientConfig, checkServerConfig } from "./roles.ts";

/**
 * Configuration is resolved as layers, later wins: defaults, HSDO's
 * conf/env.yaml, hsdo's YAML file, environment variables, flags. This module is pure: the caller reads the
 * file and passes its text, the environment and the flags. The other jobs
 * have their own modules: coerce.ts (each kind), backends.ts and legacy.ts
 * (HSDO's CLIENT_HAPROXY_* names), assemble.ts (the typed Config and the
 * checks across keys), roles.ts (what --server and --client need).
 */
export interface ConfigInput {
  /**
   * HSDO's conf/env.yaml: its variables as a flat mapping (NAME: value), the
   * layer below hsdo's own file. The environment still wins over it, as in HSDO.
   */
  hsdoEnv?: { name: string; text: string };
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

const ALL_ENV_NAMES = new Set(SCHEMA.flatMap((s) => s.env));

function parseFile(file: { name: string; text: string }): unknown {
  try {
    return parseYaml(file.text);
  } catch (err) {
    throw new ConfigError(file.name, "(file)", `is not valid YAML: ${errorMessage(err).split("\n")[0]}`);
  }
}

/**
 * HSDO's env.yaml, as HSDO reads it: one mapping of its variables, typed by
 * YAML (INTERVAL: 1 is a number). An empty value (HSDO ships `""` for what
 * it leaves unset) keeps the lower layer. A name hsdo does not read is
 * refused, as an unknown key of hsdo's file or HSDO_* variable is: a
 * misspelt variable would otherwise be ignored in silence.
 */
function readHsdoEnv(file: { name: string; text: string }): Map<string, unknown> {
  const doc = parseFile(file);
  const out = new Map<string, unknown>();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError(file.name, doc, "is not a mapping (expected NAME: value lines, as HSDO's conf/env.yaml)");
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    if (!ALL_ENV_NAMES.has(name) && !(LEGACY_BACKEND_ENV as readonly string[]).includes(name)) {
      throw new ConfigError(`${file.name}: ${name}`, value, "is not a variable hsdo reads (see the README, \"Moving from HSDO\", for HSDO's variables)");
    }
    if (value === null || value === "") continue;
    out.set(name, value);
  }
  return out;
}

export function resolveConfig(input: ConfigInput): ResolvedConfig {
  const values = new Map<string, unknown>();
  const sources = new Map<string, ValueSource>();
  for (const spec of SCHEMA) {
    values.set(spec.path, coerce(spec, spec.default, spec.path, false));
    sources.set(spec.path, { kind: "default" });
  }

  const backendsPath = "client.backends" satisfies KeyPath;
  const fileVars = input.hsdoEnv ? readHsdoEnv(input.hsdoEnv) : new Map<string, unknown>();
  if (input.hsdoEnv) {
    const file = input.hsdoEnv.name;
    for (const spec of SCHEMA) {
      for (const name of spec.env) {
        if (!fileVars.has(name)) continue;
        values.set(spec.path, coerce(spec, fileVars.get(name), `${file}: ${name}`, false));
        sources.set(spec.path, { kind: "hsdoEnv", file, name });
      }
    }
    const legacy = legacyBackends(Object.fromEntries(fileVars), (n) => `${file}: ${n}`);
    if (legacy) {
      values.set(backendsPath, legacy.backends);
      sources.set(backendsPath, { kind: "hsdoEnv", file, name: legacy.names.join(",") });
    }
  }

  if (input.file) {
    const doc = parseFile(input.file);
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

  // HSDO's backend variables build one value: set in the environment, each wins over env.yaml's (HSDO's rule), and the rest of env.yaml still counts.
  if (LEGACY_BACKEND_ENV.some((n) => input.env[n] !== undefined)) {
    const inEnv = new Set<string>(LEGACY_BACKEND_ENV.filter((n) => input.env[n] !== undefined));
    const merged: Record<string, unknown> = {};
    for (const n of LEGACY_BACKEND_ENV) merged[n] = inEnv.has(n) ? input.env[n] : fileVars.get(n);
    const legacy = legacyBackends(merged, (n) => (inEnv.has(n) || !input.hsdoEnv ? n : `${input.hsdoEnv.name}: ${n}`));
    if (legacy) {
      values.set(backendsPath, legacy.backends);
      sources.set(backendsPath, { kind: "env", name: [...inEnv].join(",") });
    }
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

  // The one place a value leaves the map: coerce() gave it its key's kind.
  const config = assembleConfig((path) => values.get(path) as ConfigValues[typeof path]);
  checkConfig(config, sources);
  return { config, sources, values };
}
