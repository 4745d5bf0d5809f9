import { hostname } from "node:os";
import {
  HsdoError,
  PreflightError,
  isOccupied,
  mapHsdoItems,
  sameSlot,
  sleep,
  type HsdoImportPlan,
  type Slot,
} from "@hsdo/core";
import { FencedWriter, LeaseKeeper, SlotReader, readLease, scanHsdoTable, type LeaseRecord, type LeaseTerm } from "@hsdo/store";
import { loadConfig } from "../load-config.ts";
import { createLogger, levelOf } from "../logger.ts";
import { checkDynamoTable, dynamoFailure, openDynamo, type DynamoHandle } from "../dynamo.ts";
import type { CommonArgs, Out } from "./common.ts";

export interface ImportHsdoArgs extends CommonArgs {
  table?: string;
  apply?: boolean;
  force?: boolean;
}

/**
 * `hsdo import-hsdo --table NAME [--apply] [--force]`: seeds hsdo's pool from
 * HSDO's table so that every enabled HSDO slot keeps its number, its target
 * and its weight (docs/ARCHITECTURE.md, "Moving from HSDO"). Reads the HSDO
 * table only (Scan); writes hsdo's pool only, as a leader would: lease,
 * stamp, publish, release.
 */
export async function importHsdoCommand(args: ImportHsdoArgs, out: Out): Promise<number> {
  const { config } = loadConfig(args);
  const log = createLogger({ level: levelOf(config) });
  const source = args.table ?? "";
  if (source === "") throw new PreflightError("import-hsdo: --table names HSDO's DynamoDB table (DYNAMODB_TABLE_NAME of the HSDO deployment)");
  if (config.server.mode === "consul") {
    throw new PreflightError(
      "import-hsdo: server.mode is consul: HSDO's Consul items are named by node, hsdo's Consul targets by node:serviceId, so the server would not recognise " +
        "them and would move every target; import for mode aws (ServerName is the instance id) or static (name the targets by HSDO's ServerName)",
    );
  }
  const dynamo = await openDynamo(config, log);
  try {
    await checkDynamoTable(dynamo, { mustReach: true, log });
    if (source === dynamo.table) throw new PreflightError(`import-hsdo: --table ${source} is hsdo's own table (dynamodb.table); name HSDO's table`);
    const items = await guard(dynamo, () =>
      scanHsdoTable(dynamo.client, source, `DynamoDB ${dynamo.endpoint}`).catch((err: unknown) => {
        throw err instanceof PreflightError ? new PreflightError(`import-hsdo: ${err.message}`, { cause: err }) : err;
      }),
    );
    const mapAt = (now: number) =>
      mapHsdoItems(items, {
        size: config.size,
        weight: config.server.weight,
        now,
        address: { allowLoopback: config.allowLoopback },
        ...(config.server.mode === "aws" && config.server.aws.port !== undefined ? { port: config.server.aws.port } : {}),
      });
    const plan = mapAt(Date.now());
    out(`HSDO table ${source}: ${items.length} items (${plan.enabled} enabled, ${plan.disabled} disabled) -> pool ${config.pool} of table ${dynamo.table}, size ${config.size}\n\n`);
    out(`${formatImportPlan(plan)}\n\n`);
    if (plan.problems.length > 0) {
      const lines = plan.problems.map((p) => `  ${p.item}: ${p.problems.join("; ")}`);
      throw new PreflightError(
        `import-hsdo: ${plan.problems.length} item${plan.problems.length === 1 ? "" : "s"} of table ${source} cannot be mapped; nothing written:\n${lines.join("\n")}`,
      );
    }

    const [current, lease] = await guard(dynamo, () =>
      Promise.all([new SlotReader({ client: dynamo.client, table: dynamo.table, pool: config.pool }).snapshot(), readLease(dynamo.client, dynamo.table, config.pool)]),
    );
    refuseOccupied(current?.slots ?? [], config.pool, args.force === true);
    // The common --dry-run wins over --apply: a dry run never writes.
    if (!args.apply || args.dryRun === true) {
      if (lease && !lease.released) {
        out(
          `note: pool ${config.pool}'s lease is held by ${lease.owner} (epoch ${lease.epoch}); --apply waits up to ${config.server.leaseMs} ms ` +
            "to see it unrenewed and refuses if a server is renewing it\n",
        );
      }
      out(`dry run: nothing written (table ${source} is never written). Run again with --apply to write these ${config.size} slots.\n`);
      return 0;
    }
    await guard(dynamo, () => applyImport(dynamo, { pool: config.pool, size: config.size, leaseMs: config.server.leaseMs, force: args.force === true, mapAt, out }));
    return 0;
  } finally {
    await dynamo.close();
  }
}

/** DynamoDB failures as one line naming endpoint and table; hsdo's own errors as they are. */
async function guard<T>(dynamo: DynamoHandle, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw err instanceof HsdoError ? err : dynamoFailure(dynamo, err);
  }
}

function refuseOccupied(slots: readonly Slot[], pool: string, force: boolean): void {
  const occupied = slots.filter(isOccupied);
  if (occupied.length === 0 || force) return;
  const shown = occupied
    .slice(0, 10)
    .map((s) => `${s.slot} (${s.name ?? "?"})`)
    .join(", ");
  throw new PreflightError(
    `import-hsdo: pool ${pool} already holds ${occupied.length} target${occupied.length === 1 ? "" : "s"} (slot ${shown}${occupied.length > 10 ? ", ..." : ""}); ` +
      "refusing to replace them. --force replaces the whole pool with the import (every slot the HSDO table leaves free becomes free)",
  );
}

/** The pool the import would leave, one row per slot: what `hsdo status` would show after it. */
export function formatImportPlan(plan: HsdoImportPlan): string {
  const rows = plan.slots.map((s) => {
    const host = s.addr?.includes(":") && s.port !== undefined ? `[${s.addr}]` : s.addr;
    const addr = host ? `${host}${s.port !== undefined ? `:${s.port}` : ""}` : "";
    return [String(s.slot), s.state, s.state === "free" ? "" : String(s.weight), addr, s.name ?? "", s.group ?? ""];
  });
  const header = ["SLOT", "STATE", "WEIGHT", "ADDRESS", "NAME", "GROUP"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

interface ApplyOptions {
  pool: string;
  size: number;
  leaseMs: number;
  force: boolean;
  /** The mapping at a given time: redone once the lease is held, so `since` gives HSDO's weight when it is written, however long the lease took. */
  mapAt: (now: number) => HsdoImportPlan;
  out: Out;
}

/**
 * The write, as a leader's: take the pool's lease (never from a live
 * server), stamp the term's epoch on head and slots, re-check the pool under
 * the lease, publish the changed slots then the head, release the lease so
 * the first hsdo server takes over at once.
 */
async function applyImport(dynamo: DynamoHandle, o: ApplyOptions): Promise<void> {
  const owner = `hsdo-import-hsdo@${hostname()}-${process.pid}`;
  const keeper = new LeaseKeeper({ client: dynamo.client, table: dynamo.table, pool: o.pool, owner, leaseMs: o.leaseMs });
  let heartbeat: NodeJS.Timeout | undefined;
  let beating: Promise<unknown> = Promise.resolve();
  try {
    const term = await takeLease(keeper, o);
    // Renewed while writing, as a leader does: a big pool's stamp and publish may outlast one lease.
    let busy = false;
    heartbeat = setInterval(() => {
      if (busy) return;
      busy = true;
      beating = keeper.tick().catch(() => undefined).finally(() => (busy = false));
    }, keeper.heartbeatMs);
    const writer = new FencedWriter({ client: dynamo.client, table: dynamo.table, pool: o.pool, leader: owner });
    const stamped = await writer.stampEpoch(term, o.size);
    // Under the lease this is authoritative: nothing can have been published since the dry-run check.
    refuseOccupied(stamped.slots, o.pool, o.force);
    const plan = o.mapAt(Date.now());
    const before = new Map(stamped.slots.map((s) => [s.slot, s]));
    const changed = plan.slots.filter((s) => {
      const b = before.get(s.slot);
      return b === undefined || !sameSlot(s, b);
    });
    const result = await writer.publish(term, { base: stamped.head, changed, size: o.size });
    o.out(
      `imported into pool ${o.pool}: ${changed.length} slot item${changed.length === 1 ? "" : "s"} written, then the head ` +
        `(generation ${result.head.generation}, epoch ${result.head.epoch}); ${plan.slots.filter(isOccupied).length} targets ready\n`,
    );
  } finally {
    if (heartbeat) clearInterval(heartbeat);
    await beating;
    await keeper.release().catch(() => undefined);
    keeper.stop();
  }
  o.out(`lease released: the first hsdo --server of pool ${o.pool} takes over at once and adopts these slots\n`);
}

/**
 * Takes the lease as a standby would (after seeing it unrenewed for a full
 * lease, at once when absent or released), but refuses, instead of waiting
 * on, a lease that is renewed meanwhile: a live server leads the pool.
 */
async function takeLease(keeper: LeaseKeeper, o: ApplyOptions): Promise<LeaseTerm> {
  let watched: LeaseRecord | undefined;
  const started = performance.now();
  for (;;) {
    const status = await keeper.tick();
    if (status.role === "leader") return status.term;
    const holder = status.holder;
    if (holder && !holder.released) {
      if (watched === undefined) {
        watched = holder;
        o.out(`pool ${o.pool}'s lease is held by ${holder.owner} (epoch ${holder.epoch}): waiting up to ${Math.max(holder.leaseMs, o.leaseMs)} ms to see it unrenewed...\n`);
      } else if (holder.rvn !== watched.rvn) {
        throw new PreflightError(
          `import-hsdo: a server leads pool ${o.pool} (lease owner ${holder.owner}, epoch ${holder.epoch}, renewed while the import waited); ` +
            "stop every hsdo --server of this pool before importing (nothing written)",
        );
      }
    }
    if (performance.now() - started > 2 * Math.max(o.leaseMs, watched?.leaseMs ?? 0) + 5000) {
      throw new HsdoError(`import-hsdo: could not take pool ${o.pool}'s lease (nothing written); try again`);
    }
    await sleep(Math.min(500, keeper.heartbeatMs));
  }
}
