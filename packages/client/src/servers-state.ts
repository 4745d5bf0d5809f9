import { RuntimeApiError } from "@hsdo/core";
import type { ServerState } from "./commands.ts";

/**
 * Reads the answer of `show servers state [<backend>]` (format version 1,
 * HAProxy 1.6 to 3.x): a version line, a `# ` header naming the columns, then
 * one line per server. Columns are found by their header name, so columns
 * added by later versions do not move anything.
 */

/** srv_admin_state bits (HAProxy's management guide, "show servers state"). */
export const ADMIN_FLAGS = {
  /** forced into maintenance (`set server ... state maint`, `disable server`) */
  FMAINT: 0x01,
  /** maintenance inherited from a tracked server */
  IMAINT: 0x02,
  /** `disabled` in the configuration; HAProxy 2.6 keeps this bit after `state ready` */
  CMAINT: 0x04,
  /** forced into drain (`set server ... state drain`) */
  FDRAIN: 0x08,
  /** drain inherited from a tracked server */
  IDRAIN: 0x10,
  /** maintenance because the address could not be resolved */
  RMAINT: 0x20,
  /** FQDN set from the Runtime API */
  HMAINT: 0x40,
} as const;

export type AdminFlag = keyof typeof ADMIN_FLAGS;

/** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping. */
export type OpState = 0 | 1 | 2 | 3;

export interface ActualServer {
  backend: string;
  backendId: number;
  name: string;
  id: number;
  /** undefined when HAProxy has no address for the server ("-"). */
  addr?: string;
  /** 0 when the server has none (declared without a port). */
  port: number;
  opState: OpState;
  /** srv_admin_state as printed: a mask of ADMIN_FLAGS. */
  adminState: number;
  adminFlags: AdminFlag[];
  /**
   * The state hsdo sets, read from the forced bits only: FMAINT is `maint`,
   * else FDRAIN is `drain`, else `ready`. CMAINT alone is not maintenance
   * (HAProxy 2.6 shows admin state 4 on a server it serves after
   * `state ready`), and inherited bits are not ours to clear, so comparing
   * on them would send the same command every tick.
   */
  state: ServerState;
  /** Whether HAProxy holds the server in maintenance for any reason (FMAINT, IMAINT or RMAINT). */
  inMaintenance: boolean;
  /** Weight set by `set server ... weight` (kept through drain and maint). */
  uweight: number;
  /** Weight from the configuration. */
  iweight: number;
  /** The name the server was declared with (srv_fqdn), when it was declared by name. */
  fqdn?: string;
}

const REQUIRED = [
  "be_id",
  "be_name",
  "srv_id",
  "srv_name",
  "srv_addr",
  "srv_op_state",
  "srv_admin_state",
  "srv_uweight",
  "srv_iweight",
  "srv_port",
] as const;

const MAINT_MASK = ADMIN_FLAGS.FMAINT | ADMIN_FLAGS.IMAINT | ADMIN_FLAGS.RMAINT;

export function adminFlags(mask: number): AdminFlag[] {
  return (Object.keys(ADMIN_FLAGS) as AdminFlag[]).filter((f) => (mask & ADMIN_FLAGS[f]) !== 0);
}

export function forcedState(mask: number): ServerState {
  if (mask & ADMIN_FLAGS.FMAINT) return "maint";
  if (mask & ADMIN_FLAGS.FDRAIN) return "drain";
  return "ready";
}

function fail(message: string, line?: string): never {
  throw new RuntimeApiError(`show servers state: ${message}`, line === undefined ? {} : { answer: line });
}

function integer(value: string | undefined, column: string, lineNo: number, line: string): number {
  if (value === undefined || !/^\d+$/.test(value)) {
    fail(`line ${lineNo}: ${column} ${JSON.stringify(value ?? "")} is not a number in ${JSON.stringify(line)}`, line);
  }
  return Number(value);
}

/** Servers per backend, in HAProxy's order. Throws RuntimeApiError quoting what it cannot read. */
export function parseServersState(text: string): Map<string, ActualServer[]> {
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const version = lines[0];
  if (version === undefined || version.trim() === "") fail("empty answer (expected the format version line)");
  if (version.trim() !== "1") {
    fail(`unknown format version line ${JSON.stringify(version)} (hsdo reads version 1)`, version);
  }
  const header = lines[1];
  if (header === undefined || !header.startsWith("# ")) {
    fail(`expected the "# be_id be_name ..." header on line 2, got ${JSON.stringify(header ?? "")}`, header);
  }
  const columns = header.slice(2).trim().split(/\s+/);
  const index = new Map(columns.map((c, i) => [c, i]));
  const missing = REQUIRED.filter((c) => !index.has(c));
  if (missing.length > 0) fail(`header lacks ${missing.join(", ")}: ${JSON.stringify(header)}`, header);
  const col = (c: (typeof REQUIRED)[number]) => index.get(c) as number;

  const out = new Map<string, ActualServer[]>();
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i] as string;
    const lineNo = i + 1;
    if (line.trim() === "") continue;
    const f = line.split(" ");
    if (f.length !== columns.length) {
      fail(`line ${lineNo} has ${f.length} fields, the header ${columns.length}: ${JSON.stringify(line)}`, line);
    }
    const get = (c: (typeof REQUIRED)[number]) => f[col(c)];
    const num = (c: (typeof REQUIRED)[number]) => integer(get(c), c, lineNo, line);
    const opState = num("srv_op_state");
    if (opState > 3) fail(`line ${lineNo}: srv_op_state ${opState} is not 0..3 in ${JSON.stringify(line)}`, line);
    const adminState = num("srv_admin_state");
    const backend = get("be_name") as string;
    const addr = get("srv_addr") as string;
    const server: ActualServer = {
      backend,
      backendId: num("be_id"),
      name: get("srv_name") as string,
      id: num("srv_id"),
      port: num("srv_port"),
      opState: opState as OpState,
      adminState,
      adminFlags: adminFlags(adminState),
      state: forcedState(adminState),
      inMaintenance: (adminState & MAINT_MASK) !== 0,
      uweight: num("srv_uweight"),
      iweight: num("srv_iweight"),
    };
    if (addr !== "-" && addr !== "") server.addr = addr;
    const fqdn = index.has("srv_fqdn") ? f[index.get("srv_fqdn") as number] : undefined;
    if (fqdn !== undefined && fqdn !== "-" && fqdn !== "") server.fqdn = fqdn;
    const list = out.get(backend);
    if (list) list.push(server);
    else out.set(backend, [server]);
  }
  return out;
}
