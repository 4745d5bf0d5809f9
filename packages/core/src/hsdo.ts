import { freeSlot, type Slot } from "./model.ts";
import { rampWeight, sinceForWeight } from "./ramp.ts";
import { isSafeName, isWeight, MAX_WEIGHT, targetAddressProblem, validateSlot, type AddressPolicy } from "./validate.ts";
import type { WeightConfig } from "./config/types.ts";

/**
 * HSDO's table, read for `hsdo import-hsdo` (docs/ARCHITECTURE.md, "Moving
 * from HSDO"). Pure: items come in already unmarshalled to plain values.
 *
 * What HSDO (BedrockStreaming/hsdo) writes, from its source:
 * - the table's only key is `BackendServerID` (N); HSDO's server creates items
 *   1..HAPROXY_BACKEND_SERVERS_LIST_SIZE at start, each a ServerModel default:
 *   IPAddress/ServerName/ASG "none", Weight 0, BackendServerStatus
 *   "disabled", LastWeightUpdate "0-0-0 00:00:00.000000"
 *   (src/server/server.py run(), src/common/server_model.py);
 * - a new target takes the first item whose IPAddress is "none": its
 *   address, instance id (ServerName), ASG, "enabled", weight 1
 *   (server.py addServer); a gone one is reset to the placeholder values
 *   (server.py removeUnexistingServers); every write sets all six
 *   attributes at once (src/common/dynamodb.py updateServer);
 * - a reader needs every attribute but ASG, which items migrated from HSDO
 *   v2 lack (dynamodb.py fillServer);
 * - HSDO's client sets server `<baseName><BackendServerID>` of every
 *   configured backend from each item: `maint` when IPAddress is "none",
 *   else `addr <IPAddress> port <serverPort>`, `weight <Weight>`, `ready`
 *   (src/client/haproxy.py prepareServer, __addServerInBackend).
 */
export type HsdoItem = Record<string, unknown>;

/** HSDO's placeholder for "no target" (ServerModel's defaults). */
export const HSDO_NONE = "none";

/** What every HSDO item carries; ASG is optional (HSDO v2 items have none). */
export const HSDO_REQUIRED_ATTRIBUTES = ["BackendServerID", "IPAddress", "ServerName", "Weight", "BackendServerStatus", "LastWeightUpdate"] as const;

export interface HsdoImportOptions {
  /** hsdo's pool size: every BackendServerID must be 1..size. */
  size: number;
  /** hsdo's ramp: the imported weight is kept by setting `since` where the ramp gives it. */
  weight: WeightConfig;
  /** When the import runs (ms since epoch): the ramp's reference. */
  now: number;
  address?: AddressPolicy;
  /** Port stored with every imported target (hsdo's server.aws.port, so the server's first tick keeps it); undefined: none. */
  port?: number;
}

/** One item hsdo cannot map, named as the operator finds it in the console. */
export interface HsdoItemProblem {
  /** `BackendServerID 3`, or `item #4 of the scan` when it has no usable id. */
  item: string;
  problems: string[];
}

export interface HsdoImportPlan {
  /** Slots 1..size: every enabled HSDO item at its own number, the rest free. */
  slots: Slot[];
  problems: HsdoItemProblem[];
  enabled: number;
  disabled: number;
}

function show(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** HSDO reads numbers with Python's int(): an integer, or a string of one. */
function integer(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

/** An item's name for messages: its BackendServerID when it has a usable one. */
export function hsdoItemName(item: HsdoItem, index: number): string {
  const id = integer(item.BackendServerID);
  return id !== undefined ? `BackendServerID ${id}` : `item #${index + 1} of the scan (BackendServerID ${show(item.BackendServerID)})`;
}

/**
 * Maps HSDO's items to hsdo's slots, keeping every number: BackendServerID k
 * is slot k, because both fleets name server k `<prefix>k` and HAProxy
 * builds its consistent-hash ring from those ids. Rules:
 *
 * - `enabled` item: slot k `ready` with addr = IPAddress, name = ServerName
 *   (the instance id: what hsdo's AWS source uses as the target's id, so the
 *   server adopts it in place), group = ASG (absent when missing, "" or
 *   "none"), weight = Weight, and `since` set so that hsdo's ramp gives that
 *   weight now and carries on from it (as HSDO's own ramp would);
 * - `disabled` item: slot k free; a number no item holds: free too;
 * - refused, each named: a missing attribute, a BackendServerID that is not
 *   an integer 1..size or appears twice, a status that is neither, an
 *   enabled item at "none" or a disabled one at an address (HSDO writes both
 *   together, and HSDO's client would serve the latter: the fleets would
 *   disagree), an address that can never be a target, a name or ASG hsdo
 *   cannot carry, a weight outside 0..weight.max (above it, hsdo's ramp
 *   would lower it at the first tick), the same ServerName or IPAddress in
 *   two enabled items (one target in two slots).
 */
export function mapHsdoItems(items: readonly HsdoItem[], options: HsdoImportOptions): HsdoImportPlan {
  const { size, weight: ramp, now } = options;
  const problems = new Map<string, string[]>();
  const add = (item: string, problem: string) => {
    const list = problems.get(item) ?? [];
    list.push(problem);
    problems.set(item, list);
  };
  const slots: Slot[] = Array.from({ length: size }, (_, i) => freeSlot(i + 1));
  const seenIds = new Map<number, number>();
  /** value -> the items holding it, to find one target in two slots. */
  const byName = new Map<string, { label: string; id: number | undefined }[]>();
  const byAddr = new Map<string, { label: string; id: number | undefined }[]>();
  let enabled = 0;
  let disabled = 0;

  items.forEach((item, index) => {
    const name = hsdoItemName(item, index);
    const missing = HSDO_REQUIRED_ATTRIBUTES.filter((key) => item[key] === undefined || item[key] === null);
    for (const key of missing) add(name, `${key} is missing (HSDO writes it on every item)`);

    const id = integer(item.BackendServerID);
    if (item.BackendServerID !== undefined && item.BackendServerID !== null) {
      if (id === undefined || id < 1) add(name, `BackendServerID ${show(item.BackendServerID)} is not a slot number (expected an integer >= 1)`);
      else if (id > size) {
        add(name, `BackendServerID ${id} is above size ${size}: raise size (HAPROXY_BACKEND_SERVERS_LIST_SIZE) to at least ${id}, as HSDO had it`);
      }
    }
    if (id !== undefined) {
      const first = seenIds.get(id);
      if (first !== undefined) {
        add(name, `BackendServerID ${id} is the key of two items (#${first + 1} and #${index + 1} of the input): a table holds one item per key`);
      } else seenIds.set(id, index);
    }

    const status = item.BackendServerStatus;
    if (status !== undefined && status !== null && status !== "enabled" && status !== "disabled") {
      add(name, `BackendServerStatus ${show(status)} is neither "enabled" nor "disabled"`);
    }
    const ip = item.IPAddress;
    const serverName = item.ServerName;
    if (status === "disabled") {
      disabled++;
      if (ip !== undefined && ip !== null && ip !== HSDO_NONE) {
        add(name, `is disabled but IPAddress is ${show(ip)}, not "none": HSDO's client would serve it (it reads IPAddress, not the status); free it in HSDO or enable it`);
      }
      return;
    }
    if (status !== "enabled") return;
    enabled++;

    if (ip === HSDO_NONE) add(name, `is enabled but IPAddress is "none": HSDO's client keeps it in maint; set it disabled`);
    else if (ip !== undefined && ip !== null) {
      const problem = targetAddressProblem(ip, options.address);
      if (problem !== undefined) add(name, `IPAddress: ${problem}`);
      else byAddr.set(ip as string, [...(byAddr.get(ip as string) ?? []), { label: name, id }]);
    }
    if (serverName === HSDO_NONE) add(name, `is enabled but ServerName is "none"`);
    else if (serverName !== undefined && serverName !== null) {
      if (!isSafeName(serverName)) add(name, `ServerName ${show(serverName)} is not a name hsdo carries (expected [A-Za-z0-9._:-]{1,128})`);
      else byName.set(serverName, [...(byName.get(serverName) ?? []), { label: name, id }]);
    }
    const asg = item.ASG;
    const group = typeof asg === "string" && asg !== "" && asg !== HSDO_NONE ? asg : undefined;
    if (asg !== undefined && asg !== null && typeof asg !== "string") add(name, `ASG ${show(asg)} is not a string`);
    if (group !== undefined && !isSafeName(group)) add(name, `ASG ${show(group)} is not a name hsdo carries (expected [A-Za-z0-9._:-]{1,128})`);
    const w = integer(item.Weight);
    if (item.Weight !== undefined && item.Weight !== null) {
      if (w === undefined || !isWeight(w)) add(name, `Weight ${show(item.Weight)} is not a weight (expected an integer 0..${MAX_WEIGHT})`);
      else if (w > ramp.max) {
        add(name, `Weight ${w} is above weight.max ${ramp.max}: hsdo's ramp would lower it; set server.weight.max (SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT) to HSDO's value`);
      }
    }

    if (problems.has(name) || id === undefined || id < 1 || id > size || w === undefined) return;
    const since = sinceForWeight(w, now, ramp);
    const slot: Slot = { slot: id, state: "ready", addr: ip as string, name: serverName as string, weight: rampWeight(since, now, ramp), since };
    if (options.port !== undefined) slot.port = options.port;
    if (group !== undefined) slot.group = group;
    const check = validateSlot({ ...slot }, id);
    if (!check.ok) {
      for (const p of check.problems) add(name, p);
      return;
    }
    slots[id - 1] = slot;
  });

  for (const [what, index] of [
    ["ServerName", byName],
    ["IPAddress", byAddr],
  ] as const) {
    for (const [value, holders] of index) {
      if (holders.length < 2) continue;
      for (const { label, id } of holders) {
        const others = holders.filter((o) => o.label !== label).map((o) => o.label);
        add(label, `${what} ${show(value)} is also in ${others.join(", ")}: one target in two slots`);
        if (id !== undefined && id >= 1 && id <= size) slots[id - 1] = freeSlot(id);
      }
    }
  }

  // In slot order, as the operator reads the table; items without a usable id last.
  const order = (label: string) => Number(/^BackendServerID (-?\d+)$/.exec(label)?.[1] ?? Number.MAX_SAFE_INTEGER);
  const list = [...problems].map(([item, p]) => ({ item, problems: p })).sort((a, b) => order(a.item) - order(b.item));
  return { slots, problems: list, enabled, disabled };
}

/** One HSDO client's backend: HAProxy backend name, server-template base name, the port it sets. */
export interface HsdoBackend {
  name: string;
  baseName: string;
  /** CLIENT_HAPROXY_BACKEND_SERVER_PORT (or the backend's serverPort in CLIENT_HAPROXY_BACKEND_LIST). */
  serverPort: string | number;
}

export interface HsdoClientConfig {
  backends: readonly HsdoBackend[];
  /** CLIENT_DEDICATED_ASG=true: targets outside `asgNames` go to the fallback backend only. */
  dedicatedAsg?: boolean;
  /** CLIENT_ASG_NAMES. */
  asgNames?: readonly string[];
  /** CLIENT_HAPROXY_FALLBACK_BACKEND_NAME / _BASE_NAME, with CLIENT_HAPROXY_BACKEND_SERVER_PORT. */
  fallback?: HsdoBackend;
  /** CLIENT_ALL_SERVERS_IN_FALLBACK_BACKEND=true. */
  allInFallback?: boolean;
}

/** What HSDO's client leaves one HAProxy server at. */
export type HsdoServerSetting =
  | { backend: string; server: string; state: "maint" }
  | { backend: string; server: string; state: "ready"; addr: string; port: string; weight: number };

/**
 * What HSDO's client would set in HAProxy from these items, as its
 * haproxy.py does (prepareServer, __addServerInBackend): per item, per
 * backend, server `<baseName><BackendServerID>` in maint when IPAddress is
 * "none", else at IPAddress, the backend's port, Weight, ready. With
 * CLIENT_DEDICATED_ASG, an item whose ASG is not one of CLIENT_ASG_NAMES
 * (free items included: their ASG is "none") is only set in the fallback
 * backend. Keyed `backend/server`; a server no item sets is absent (HSDO's
 * client leaves it as it is). Items are read as HSDO's fillServer reads
 * them: a missing ASG is "none".
 */
export function hsdoClientSettings(items: readonly HsdoItem[], cfg: HsdoClientConfig): Map<string, HsdoServerSetting> {
  const out = new Map<string, HsdoServerSetting>();
  const set = (item: HsdoItem, b: HsdoBackend) => {
    const server = `${b.baseName}${integer(item.BackendServerID)}`;
    const setting: HsdoServerSetting =
      item.IPAddress === HSDO_NONE
        ? { backend: b.name, server, state: "maint" }
        : { backend: b.name, server, state: "ready", addr: String(item.IPAddress), port: String(b.serverPort), weight: integer(item.Weight) ?? 0 };
    out.set(`${b.name}/${server}`, setting);
  };
  for (const item of items) {
    const asg = typeof item.ASG === "string" ? item.ASG : HSDO_NONE;
    if (cfg.dedicatedAsg && !(cfg.asgNames ?? []).includes(asg)) {
      if (cfg.fallback) set(item, cfg.fallback);
      continue;
    }
    for (const b of cfg.backends) {
      set(item, b);
      if (cfg.allInFallback && cfg.fallback) set(item, cfg.fallback);
    }
  }
  return out;
}

/**
 * The Runtime API commands HSDO's client sends for one setting, in its
 * order (haproxy.py __addServerInBackend): `state maint` for a free item,
 * else `addr ... port ...`, `weight ...`, `state ready`. Sent to a real
 * HAProxy, they put it where an HSDO client would have left it.
 */
export function hsdoCommands(setting: HsdoServerSetting): string[] {
  const server = `${setting.backend}/${setting.server}`;
  if (setting.state === "maint") return [`set server ${server} state maint`];
  return [`set server ${server} addr ${setting.addr} port ${setting.port}`, `set server ${server} weight ${setting.weight}`, `set server ${server} state ready`];
}
