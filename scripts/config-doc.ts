// Writes conf/hsdo.yaml (every key, documented, at its default, commented
// out so that the defaults stay the program's) and the configuration table
// of the README between its markers. `npm test` checks both are current.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SCHEMA, formatDuration, parseDuration, type KeySpec } from "@hsdo/core";
import { stringify } from "yaml";
import { Metrics } from "@hsdo/cli/metrics";

const root = fileURLToPath(new URL("..", import.meta.url));

function shown(spec: KeySpec): string {
  if (spec.kind === "duration") return formatDuration(parseDuration(spec.default) ?? 0);
  if (spec.default === null) return "";
  if (typeof spec.default === "string") return spec.default === "" ? '""' : spec.default;
  return JSON.stringify(spec.default);
}

export function configYaml(): string {
  const lines = [
    "# hsdo configuration: every key, with its default.",
    "#",
    "# Layers, later wins: these defaults, HSDO's conf/env.yaml (--hsdo-env), this file, environment variables, flags",
    "# (--set key=value). Each key lists the variables that set it: HSDO's own",
    "# names keep their meaning, and every key has an HSDO_* name.",
    "# Durations: 500ms, 30s, 1m, 2h, or plain seconds.",
    "# Uncomment and edit what you need; `hsdo config` prints the effective values",
    "# and where each one came from.",
    "",
  ];
  let section = "";
  for (const spec of SCHEMA) {
    const parts = spec.path.split(".");
    const top = parts.length > 1 ? parts.slice(0, -1).join(".") : "";
    if (top !== section) {
      lines.push("");
      const segs = top.split(".");
      const prev = section.split(".");
      segs.forEach((seg, i) => {
        if (prev[i] !== seg || segs.slice(0, i).join(".") !== prev.slice(0, i).join(".")) lines.push(`# ${"  ".repeat(i)}${seg}:`);
      });
      section = top;
    }
    const indent = "  ".repeat(parts.length - 1);
    lines.push(`# ${indent}# ${spec.doc}`);
    lines.push(`# ${indent}#   env: ${spec.env.join(", ")}`);
    if (spec.kind === "backends") {
      const body = stringify({ backends: spec.default }).trimEnd().split("\n").slice(1);
      lines.push(`# ${indent}backends:`);
      for (const l of body) lines.push(`# ${indent}${l}`);
      lines.push(`# ${indent}#   each backend: name (HAProxy backend), prefix (server-template prefix, default: name),`);
      lines.push(`# ${indent}#   port (default: the target's own port), pool (default: the top-level pool),`);
      lines.push(`# ${indent}#   select: all | dedicated (this node's groups or AZ) | fallback (the others),`);
      lines.push(`# ${indent}#   allInFallback: true puts every target in a fallback backend.`);
    } else {
      lines.push(`# ${indent}${parts.at(-1)}: ${shown(spec)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export function configTable(): string {
  const rows = SCHEMA.map((s) => `| \`${s.path}\` | ${s.env.map((e) => `\`${e}\``).join(", ")} | \`${shown(s) || "(unset)"}\` | ${s.doc.replace(/\|/g, "\\|")} |`);
  return ["| key | environment | default | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

export const START = "<!-- config-table:start -->";
export const END = "<!-- config-table:end -->";
export const METRICS_START = "<!-- metrics-table:start -->";
export const METRICS_END = "<!-- metrics-table:end -->";

/** Every hsdo metric (process metrics of prom-client aside), from the registry itself. */
export async function metricsTable(): Promise<string> {
  const metrics = new Metrics({ processMetrics: false }).registry.getMetricsAsArray() as unknown as { name: string; help: string; labelNames?: string[]; constructor: { name: string } }[];
  const rows = metrics
    .map((m) => `| \`${m.name}\` | ${m.constructor.name.toLowerCase()} | ${(m.labelNames ?? []).map((l) => `\`${l}\``).join(", ")} | ${m.help} |`)
    .sort();
  return ["| metric | type | labels | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

function replaceBetween(text: string, start: string, end: string, body: string): string {
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return text;
  return `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(`${root}/conf/hsdo.yaml`, configYaml());
  let readme = readFileSync(`${root}/README.md`, "utf8");
  readme = replaceBetween(readme, START, END, configTable());
  readme = replaceBetween(readme, METRICS_START, METRICS_END, await metricsTable());
  writeFileSync(`${root}/README.md`, readme);
  console.log("wrote conf/hsdo.yaml and the README's configuration and metrics tables");
}
