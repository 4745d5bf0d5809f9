import { parseDocument } from "yaml";
import { formatValue, isIpLiteral, isPort, isSafeName, type Target } from "@hsdo/core";

/**
 * The static source's file, checked strictly: every problem is reported at
 * once with its key path (`targets[2].port`), so one edit fixes them all.
 *
 *   targets:
 *     - { name: web-1, addr: 10.0.0.1, port: 8080, group: web, az: eu-west-1a }
 *     - { name: web-2, addr: 10.0.0.2, state: drain }
 */
export type StaticParse = { ok: true; targets: Target[] } | { ok: false; problems: string[] };

const TARGET_KEYS = new Set(["name", "addr", "port", "group", "az", "state"]);
const STATES: Record<string, Target["health"]> = { ready: "ready", drain: "leaving" };

export function parseStaticTargets(text: string): StaticParse {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) return { ok: false, problems: doc.errors.map((e) => `YAML: ${(e.message.split("\n")[0] ?? "").replace(/:$/, "")}`) };
  const root: unknown = doc.toJS();
  // An empty file is refused: a half-written file must not read as "no targets".
  if (root === null || root === undefined) return { ok: false, problems: ["the file is empty (expected a mapping with a `targets` list)"] };
  if (!isRecord(root)) return { ok: false, problems: [`${formatValue(root)} is not a mapping (expected \`targets:\` and a list)`] };
  const problems = Object.keys(root)
    .filter((k) => k !== "targets")
    .map((k) => `${k}: unknown key (expected only \`targets\`)`);
  const list = root.targets;
  if (!Array.isArray(list)) {
    problems.push(`targets: ${formatValue(list)} is not a list (expected a list of targets, possibly empty: \`targets: []\`)`);
    return { ok: false, problems };
  }
  const targets: Target[] = [];
  const names = new Map<string, number>();
  const endpoints = new Map<string, number>();
  for (const [index, item] of list.entries()) {
    const at = `targets[${index}]`;
    if (!isRecord(item)) {
      problems.push(`${at}: ${formatValue(item)} is not a mapping (expected name, addr, port, group, az, state)`);
      continue;
    }
    const before = problems.length;
    for (const key of Object.keys(item)) {
      if (!TARGET_KEYS.has(key)) problems.push(`${at}.${key}: unknown key (expected one of ${[...TARGET_KEYS].join(", ")})`);
    }
    const { name, addr, port, group, az, state } = item;
    if (!isSafeName(name)) problems.push(`${at}.name: ${formatValue(name)} is not a name (expected 1..128 of [A-Za-z0-9._:-])`);
    if (!isIpLiteral(addr)) problems.push(`${at}.addr: ${formatValue(addr)} is not an IP address (expected e.g. 10.0.0.1 or fd00::1)`);
    if (port !== undefined && !isPort(port)) problems.push(`${at}.port: ${formatValue(port)} is not a port (expected 1..65535)`);
    for (const [key, value] of [["group", group], ["az", az]] as const) {
      if (value !== undefined && value !== "" && !isSafeName(value)) problems.push(`${at}.${key}: ${formatValue(value)} is not a name (expected [A-Za-z0-9._:-])`);
    }
    if (state !== undefined && (typeof state !== "string" || !(state in STATES))) {
      problems.push(`${at}.state: ${formatValue(state)} is not a state (expected ready or drain)`);
    }
    if (isSafeName(name)) {
      const other = names.get(name);
      if (other !== undefined) problems.push(`${at}.name: ${formatValue(name)} is already the name of targets[${other}] (names must be unique)`);
      else names.set(name, index);
    }
    if (isIpLiteral(addr) && (port === undefined || isPort(port))) {
      const endpoint = `${addr} ${port ?? "-"}`;
      const other = endpoints.get(endpoint);
      if (other !== undefined) problems.push(`${at}: addr ${addr}${port ? ` port ${port}` : ""} is already targets[${other}] (one entry per endpoint)`);
      else endpoints.set(endpoint, index);
    }
    if (problems.length > before) continue;
    const target: Target = {
      id: name as string,
      addr: addr as string,
      group: typeof group === "string" ? group : "",
      az: typeof az === "string" ? az : "",
      // File order is the order new targets take slots in.
      launchedAt: index,
      health: STATES[typeof state === "string" ? state : "ready"] ?? "ready",
    };
    if (isPort(port)) target.port = port;
    targets.push(target);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, targets };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
