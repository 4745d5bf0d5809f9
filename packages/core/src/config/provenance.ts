import { SCHEMA_BY_PATH } from "./schema.ts";

/** Where a key's value came from: configuration is resolved as layers, later wins (defaults, HSDO's env.yaml, file, environment, flags). */
export type ValueSource =
  | { kind: "default" }
  | { kind: "hsdoEnv"; file: string; name: string }
  | { kind: "file"; file: string }
  | { kind: "env"; name: string }
  | { kind: "flag"; name: string };

export function describeSource(source: ValueSource): string {
  switch (source.kind) {
    case "default":
      return "default";
    case "hsdoEnv":
      return `env.yaml ${source.file} ${source.name}`;
    case "file":
      return `file ${source.file}`;
    case "env":
      return `env ${source.name}`;
    case "flag":
      return `flag ${source.name}`;
  }
}

/** A key as an error names it: the variable or flag that set it, with the path. */
export function labelOf(path: string, sources: ReadonlyMap<string, ValueSource>): string {
  const s = sources.get(path);
  if (s?.kind === "hsdoEnv") return `${s.file}: ${s.name} (${path})`;
  return s?.kind === "env" ? `${s.name} (${path})` : s?.kind === "flag" ? `${s.name} (${path})` : path;
}

/** A key with the variables an operator could set it with, for errors about missing values. */
export function labelWithEnv(path: string, sources: ReadonlyMap<string, ValueSource>): string {
  const spec = SCHEMA_BY_PATH.get(path);
  const s = sources.get(path);
  if (s?.kind === "env") return `${s.name} (${path})`;
  if (s?.kind === "hsdoEnv") return `${s.file}: ${s.name} (${path})`;
  return spec?.env[0] ? `${path} (${spec.env[0]})` : path;
}
