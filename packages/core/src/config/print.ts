import { formatDuration } from "../duration.ts";
import type { ResolvedConfig } from "./load.ts";
import { describeSource } from "./provenance.ts";
import { SCHEMA } from "./schema.ts";

/** One row per key for `hsdo config`: the value as an operator writes it, and where it came from. */
export interface ConfigRow {
  key: string;
  value: unknown;
  source: string;
  env: readonly string[];
}

export function configRows(resolved: ResolvedConfig): ConfigRow[] {
  return SCHEMA.map((spec) => {
    let value = resolved.values.get(spec.path);
    if (spec.kind === "duration" && typeof value === "number") value = formatDuration(value);
    if (spec.path === "client.backends") value = resolved.config.client.backends;
    if (spec.secret && value) value = "(hidden)";
    return { key: spec.path, value, source: describeSource(resolved.sources.get(spec.path) ?? { kind: "default" }), env: spec.env };
  });
}

export function formatConfigRows(rows: ConfigRow[]): string {
  const show = (v: unknown) => (typeof v === "string" ? (v === "" ? '""' : v) : JSON.stringify(v));
  const width = Math.max(...rows.map((r) => r.key.length));
  return rows.map((r) => `${r.key.padEnd(width)}  ${show(r.value)}  (${r.source})`).join("\n");
}
