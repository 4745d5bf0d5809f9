import { parse as parseYaml } from "yaml";
import { ConfigError, errorMessage } from "../errors.ts";
import { assembleConfig, checkConfig } from "./assemble.ts";
import { coerce } from "./coerce.ts";
import { legacyBackends } from "./legacy.ts";
import type { ValueSource } from "./provenance.ts";
import { SCHEMA, SCHEMA_BY_PATH, type ConfigValues, type KeyPath } from "./schema.ts";
import type { Config } from "./types.ts";

export { describeSource, type ValueSource } from "./provenance.ts";
export { checkClientConfig, checkServerConfig } from "./roles.ts";

/**
 * Configuration is resolved as layers, later wins: defaults, the YAML file,
 * environment variables, flags. This module is pure: the caller reads the
 * file and passes its text, the environment and the flags. The other jobs
 * have their own modules: coerce.ts (each kind), backends.ts and legacy.ts
 * (HSDO's CLIENT_HAPROXY_* names), assemble.ts (the typed Config and the
 * checks across keys), roles.ts (what --server and --client need).
 */
export interface ConfigInput {
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

export function resolveConfig(input: ConfigInput): ResolvedConfig {
  const values = new Map<string, unknown>();
  const sources = new Map<string, ValueSource>();
  for (const spec of SCHEMA) {
    values.set(spec.path, coerce(spec, spec.default, spec.path, false));
    sources.set(spec.path, { kind: "default" });
  }

  if (input.file) {
    let doc: unknown;
    try {
      doc = parseYaml(input.file.text);
    } catch (err) {
      throw new ConfigError(input.file.name, "(file)", `is not valid YAML: ${errorMessage(err).split("\n")[0]}`);
    }
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

  const legacy = legacyBackends(input.env);
  if (legacy) {
    const path = "client.backends" satisfies KeyPath;
    values.set(path, legacy.backends);
    sources.set(path, { kind: "env", name: legacy.name });
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
