import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { FencedWriter, LeaseKeeper } from "@hsdo/store";
import type { Head, Slot } from "@hsdo/core";

/** A leader in the test's process: takes the lease once, stamps its epoch, then publishes changes as the server does. */
export interface Publisher {
  readonly epoch: number;
  readonly head: Head;
  publish(changed: Slot[]): Promise<Head>;
}

export async function startPublisher(t: TestContext, db: DynamoDBClient, opts: { table: string; pool: string; size: number }): Promise<Publisher> {
  // A lease far longer than any test: the term must outlive a dynalite outage without renewals.
  const lease = new LeaseKeeper({ client: db, table: opts.table, pool: opts.pool, owner: "test-leader", leaseMs: 120_000 });
  t.after(() => lease.stop());
  const status = await lease.tick();
  assert.equal(status.role, "leader", "the test publisher takes the lease of an empty pool");
  if (status.role !== "leader") throw new Error("unreachable");
  const term = status.term;
  const writer = new FencedWriter({ client: db, table: opts.table, pool: opts.pool, leader: "test-leader" });
  let head = (await writer.stampEpoch(term, opts.size)).head;
  return {
    epoch: term.epoch,
    get head() {
      return head;
    },
    async publish(changed) {
      head = (await writer.publish(term, { base: head, changed })).head;
      return head;
    },
  };
}
