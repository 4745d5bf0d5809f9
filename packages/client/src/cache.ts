import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import {
  HsdoError,
  errorMessage,
  freeSlot,
  isSafeName,
  validateHead,
  validateSlot,
  type InvalidSlot,
  type Slot,
  type Snapshot,
} from "@hsdo/core";
import { writeFileAtomic } from "./atomic-file.ts";

/**
 * The last good snapshot of each pool, kept in a local file so that a client
 * restarted while DynamoDB cannot be read still restores HAProxy (fail
 * static). Written atomically (temp file, fsync, rename), so a crash leaves
 * the old file or the new one, never half of one. What is read back is
 * checked like a table item: the file sits on disk where anything can happen
 * to it, and it feeds the Runtime API.
 */

const FORMAT = 2;

/**
 * Where a snapshot was read: a cached snapshot is restored only into a client
 * reading the same pool of the same table at the same endpoint and region.
 * Two clients on one host (or a client reconfigured for another table) with
 * the same pool name never restore each other's slots.
 */
export interface SnapshotOrigin {
  endpoint: string;
  region: string;
  table: string;
  pool: string;
}

export type CacheLoad =
  | { status: "loaded"; snapshot: Snapshot; file: string }
  | { status: "missing"; file: string }
  | { status: "corrupt"; file: string; error: string }
  | { status: "foreign"; file: string; error: string };

/** The cache file of an origin: the pool's name, then a digest of endpoint, region and table. */
export function cacheFile(dir: string, origin: SnapshotOrigin): string {
  if (!isSafeName(origin.pool)) throw new HsdoError(`pool ${JSON.stringify(origin.pool)} is not a name usable as a cache file name`);
  const digest = createHash("sha256").update(JSON.stringify([origin.endpoint, origin.region, origin.table])).digest("hex").slice(0, 12);
  return join(dir, `hsdo-snapshot-${origin.pool}-${digest}.json`);
}

/** Writes the snapshot of its origin atomically; returns the file path. */
export async function saveSnapshot(dir: string, origin: SnapshotOrigin, snapshot: Snapshot): Promise<string> {
  if (snapshot.pool !== origin.pool) throw new HsdoError(`snapshot of pool ${snapshot.pool} saved as pool ${origin.pool}`);
  const file = cacheFile(dir, origin);
  const body = `${JSON.stringify({ format: FORMAT, origin: originOf(origin), snapshot }, null, 1)}\n`;
  try {
    await writeFileAtomic(file, body);
  } catch (err) {
    throw new HsdoError(`cannot write the snapshot cache ${file}: ${errorMessage(err)} (check client.cacheDir)`, {
      cause: err,
    });
  }
  return file;
}

function originOf(o: SnapshotOrigin): SnapshotOrigin {
  return { endpoint: o.endpoint, region: o.region, table: o.table, pool: o.pool };
}

/**
 * Reads an origin's cached snapshot. Never throws for what it finds on disk: a
 * missing file is "missing", an unreadable or malformed one is "corrupt" with
 * the reason, one written for another endpoint, region, table or pool is
 * "foreign" (the caller logs them and goes on without). A slot item that fails
 * validation is kept as free and listed in `invalid`, as the table reader does.
 */
export async function loadSnapshot(dir: string, origin: SnapshotOrigin): Promise<CacheLoad> {
  const file = cacheFile(dir, origin);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { status: "missing", file };
    return { status: "corrupt", file, error: `cannot read ${file}: ${errorMessage(err)}` };
  }
  try {
    const data: unknown = JSON.parse(text);
    const foreign = foreignOrigin(data, origin);
    if (foreign) return { status: "foreign", file, error: `snapshot cache ${file} ${foreign}: not restored` };
    return { status: "loaded", file, snapshot: readCachedSnapshot(data, origin.pool) };
  } catch (err) {
    return { status: "corrupt", file, error: `snapshot cache ${file} is corrupt, ignored: ${errorMessage(err)}` };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Why the file does not belong to `origin`, or undefined when it does. */
function foreignOrigin(data: unknown, origin: SnapshotOrigin): string | undefined {
  if (!isObject(data) || data.format !== FORMAT) return undefined; // readCachedSnapshot says what is wrong
  const stored = data.origin;
  if (!isObject(stored)) return "names no origin";
  for (const k of ["endpoint", "region", "table", "pool"] as const) {
    if (stored[k] !== origin[k]) return `was written for ${k} ${JSON.stringify(stored[k])}, this client reads ${JSON.stringify(origin[k])}`;
  }
  return undefined;
}

function readCachedSnapshot(data: unknown, pool: string): Snapshot {
  if (!isObject(data)) throw new Error("not a JSON object");
  if (data.format !== FORMAT) throw new Error(`format ${JSON.stringify(data.format)} is not ${FORMAT}`);
  const s = data.snapshot;
  if (!isObject(s)) throw new Error("no snapshot object");
  if (s.pool !== pool) throw new Error(`holds pool ${JSON.stringify(s.pool)}, not ${JSON.stringify(pool)}`);
  if (!isObject(s.head)) throw new Error("no head");
  const check = validateHead(s.head);
  if (!check.ok) throw new Error(check.problems.map((p) => `head.${p}`).join("; "));
  const head = check.head;
  if (!Array.isArray(s.slots)) throw new Error("slots is not a list");
  if (s.slots.length !== head.size) throw new Error(`${s.slots.length} slots where head.size is ${head.size}`);

  const invalid = new Map<number, string[]>();
  if (s.invalid !== undefined) {
    if (!Array.isArray(s.invalid)) throw new Error("invalid is not a list");
    for (const bad of s.invalid as unknown[]) {
      if (!isObject(bad) || !Number.isInteger(bad.slot) || !Array.isArray(bad.problems)) {
        throw new Error(`invalid entry ${JSON.stringify(bad)} is not {slot, problems}`);
      }
      invalid.set(bad.slot as number, (bad.problems as unknown[]).map(String));
    }
  }
  const slots: Slot[] = s.slots.map((item: unknown, i: number) => {
    const n = i + 1;
    if (invalid.has(n)) return freeSlot(n);
    const check = validateSlot(isObject(item) ? item : { slot: item }, n);
    if (check.ok) return check.slot;
    invalid.set(n, check.problems);
    return freeSlot(n);
  });
  const list: InvalidSlot[] = [...invalid].sort((a, b) => a[0] - b[0]).map(([slot, problems]) => ({ slot, problems }));
  return { pool, head, slots, invalid: list };
}
