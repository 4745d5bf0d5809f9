import { isIpLiteral, isPort, isSafeName, type TargetHealth } from "@hsdo/core";

/**
 * Consul's `/v1/health/service/<name>` answer, checked and reduced to what a
 * Target needs. Pure: the watcher calls it on every answer, the source on
 * every list().
 */

/** One service instance, as hsdo reads it from a health entry. */
export interface ConsulInstance {
  /** `<node>:<serviceId>`, sanitised to [A-Za-z0-9._:-]. */
  id: string;
  /** Service.Address, else Node.Address; "" when neither is an IP literal. */
  addr: string;
  port?: number;
  service: string;
  az: string;
  health: TargetHealth;
}

export interface EntryRules {
  /** Every one must be among the instance's tags. */
  tags: string[];
  /** A warning check makes the instance leave instead of staying ready. */
  passingOnly: boolean;
  azMetaKey: string;
}

export type ParsedAnswer = { ok: true; instances: ConsulInstance[]; problems: string[] } | { ok: false; error: string };

interface RawEntry {
  Node?: { Node?: unknown; Address?: unknown; Meta?: unknown };
  Service?: { ID?: unknown; Service?: unknown; Address?: unknown; Port?: unknown; Tags?: unknown; Meta?: unknown };
  Checks?: unknown;
}

/**
 * The answer must be an array of entries with a node and a service; one that
 * is not is refused whole (it would otherwise read as "no instances").
 * Entries that are usable but odd (no IP address, bad AZ) become problems,
 * and the instance is `pending` so it never takes a slot.
 */
export function parseHealthAnswer(body: unknown, service: string, rules: EntryRules): ParsedAnswer {
  if (!Array.isArray(body)) return { ok: false, error: `answer for service "${service}" is not a JSON array (got ${typeof body})` };
  const instances: ConsulInstance[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [index, item] of body.entries()) {
    const entry = (typeof item === "object" && item !== null ? item : {}) as RawEntry;
    const node = entry.Node?.Node;
    const serviceId = entry.Service?.ID;
    if (typeof node !== "string" || node === "" || typeof serviceId !== "string" || serviceId === "") {
      return { ok: false, error: `answer for service "${service}": entry ${index} has no Node.Node or Service.ID` };
    }
    const tags = stringList(entry.Service?.Tags);
    if (!rules.tags.every((t) => tags.includes(t))) continue;
    const where = `service "${service}" instance ${node}/${serviceId}`;
    const id = instanceId(node, serviceId);
    if (seen.has(id)) {
      problems.push(`${where}: id ${id} already used by another instance (names differ only in characters outside [A-Za-z0-9._:-]); ignored`);
      continue;
    }
    seen.add(id);
    const rawAddr = nonEmpty(entry.Service?.Address) ?? nonEmpty(entry.Node?.Address) ?? "";
    let health = classifyChecks(entry.Checks, rules.passingOnly);
    let addr = rawAddr;
    if (!isIpLiteral(rawAddr)) {
      problems.push(`${where}: address ${JSON.stringify(rawAddr)} is not an IP address (HAProxy's runtime API needs one); kept pending`);
      addr = "";
      health = "pending";
    }
    const az = metaValue(entry.Node?.Meta, rules.azMetaKey) ?? metaValue(entry.Service?.Meta, rules.azMetaKey) ?? "";
    const instance: ConsulInstance = { id, addr, service, az: isSafeName(az) ? az : "", health };
    if (az !== "" && !isSafeName(az)) problems.push(`${where}: AZ ${JSON.stringify(az)} (meta ${rules.azMetaKey}) is not a name of [A-Za-z0-9._:-]; ignored`);
    const port = entry.Service?.Port;
    // Port 0 is how Consul says "no port": the client backend's port applies.
    if (isPort(port)) instance.port = port;
    else if (port !== 0 && port !== undefined) problems.push(`${where}: port ${JSON.stringify(port)} is not a port; ignored`);
    instances.push(instance);
  }
  return { ok: true, instances, problems };
}

/**
 * Every check counts, node checks (serfHealth, node maintenance) included:
 * any critical, or a status we do not know, drains; warning drains only
 * when passingOnly.
 */
export function classifyChecks(checks: unknown, passingOnly: boolean): TargetHealth {
  const statuses = Array.isArray(checks)
    ? checks.map((c) => (typeof c === "object" && c !== null ? (c as { Status?: unknown }).Status : undefined))
    : [];
  if (statuses.some((s) => s !== "passing" && s !== "warning")) return "leaving";
  if (statuses.includes("warning")) return passingOnly ? "leaving" : "ready";
  return "ready";
}

/** `<node>:<serviceId>` with every character outside [A-Za-z0-9._:-] replaced by `_`, at most 128 characters. */
export function instanceId(node: string, serviceId: string): string {
  return `${node}:${serviceId}`.replace(/[^A-Za-z0-9._:-]/g, "_").slice(0, 128);
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function metaValue(meta: unknown, key: string): string | undefined {
  if (key === "" || typeof meta !== "object" || meta === null) return undefined;
  return nonEmpty((meta as Record<string, unknown>)[key]);
}
