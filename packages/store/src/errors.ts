import { HsdoError, LeaseLostError, PreflightError } from "@hsdo/core";
import type { LeaseRecord } from "./items.ts";

/** The table exists but is not an hsdo table: its key schema differs from `pool` (S, HASH) + `slot` (N, RANGE). */
export class TableSchemaError extends PreflightError {
  constructor(
    readonly table: string,
    readonly found: string,
    options?: ErrorOptions,
  ) {
    super(
      `table ${table} exists with key schema ${found}; hsdo needs pool (S, HASH) + slot (N, RANGE): ` +
        `choose another table name (dynamodb.table / DYNAMODB_TABLE_NAME) or delete that table`,
      options,
    );
  }
}

/**
 * A head or lease item that hsdo cannot read. Nothing is guessed from it: the
 * operator fixes or deletes the item named here (a slot item, by contrast, is
 * only reported in `Snapshot.invalid`).
 */
export class MalformedItemError extends HsdoError {
  constructor(
    readonly table: string,
    readonly pool: string,
    readonly slot: number,
    readonly problems: string[],
    options?: ErrorOptions,
  ) {
    super(
      `table ${table}, pool ${JSON.stringify(pool)}, slot ${slot} (${slot === -1 ? "lease" : "head"} item) is malformed: ` +
        `${problems.join("; ")}; fix or delete this item`,
      options,
    );
  }
}

/**
 * Every read of the pool caught a publication half-way (a slot newer than the
 * head). Transient: the writer finishes by writing the head; the reader keeps
 * its last snapshot and tries again later.
 */
export class TornReadError extends HsdoError {
  constructor(
    readonly pool: string,
    readonly attempts: number,
    readonly headGeneration: number,
    readonly slot: number,
    readonly slotGeneration: number,
    options?: ErrorOptions,
  ) {
    super(
      `pool ${JSON.stringify(pool)}: torn read ${attempts} times in a row (slot ${slot} has generation ` +
        `${slotGeneration}, head has ${headGeneration}); a publication is in progress or its writer died before ` +
        `writing the head (the next leader repairs it)`,
      options,
    );
  }
}

/** The lease's conditional write failed: another contender holds it now (`holder`, from the failed write's evidence). */
export class LeaseTakenError extends LeaseLostError {
  constructor(
    owner: string,
    readonly epoch: number,
    readonly holder: LeaseRecord | undefined,
    options?: ErrorOptions,
  ) {
    super(
      owner,
      holder
        ? `the lease of epoch ${epoch} is now held by ${JSON.stringify(holder.owner)} at epoch ${holder.epoch}`
        : `the lease of epoch ${epoch} is gone (lease item deleted or unreadable)`,
      options,
    );
  }
}

/**
 * A write of this term was refused by the same-epoch fence: the item already
 * holds `storedGeneration` (not below ours) with other content. The table
 * moved past the writer's base (a write of an abandoned publication, or
 * another writer of the same epoch): the caller reads the table back (the
 * server re-stamps) before publishing again.
 */
export class GenerationConflictError extends HsdoError {
  constructor(
    readonly pool: string,
    readonly slot: number,
    readonly ourGeneration: number,
    readonly storedGeneration: number | undefined,
    options?: ErrorOptions,
  ) {
    super(
      `pool ${JSON.stringify(pool)}: slot ${slot} already holds generation ${storedGeneration ?? "?"} with other content; ` +
        `refusing to write generation ${ourGeneration} over it (the table moved past this writer's base; it is read back before the next publication)`,
      options,
    );
  }
}
