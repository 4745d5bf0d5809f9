import { HsdoError } from "@hsdo/core";
import { readLease, SlotReader } from "@hsdo/store";
import { loadConfig } from "../load-config.ts";
import { createLogger, levelOf } from "../logger.ts";
import { checkDynamoTable, dynamoFailure, openDynamo } from "../dynamo.ts";
import { formatStatus } from "../status-format.ts";
import type { CommonArgs, Out } from "./common.ts";

/** `hsdo status`: the pool as the table holds it (consistent read), and who holds the lease. */
export async function statusCommand(args: CommonArgs & { json?: boolean }, out: Out): Promise<number> {
  const { config } = loadConfig(args);
  const log = createLogger({ level: levelOf(config) });
  const dynamo = await openDynamo(config, log);
  try {
    await checkDynamoTable(dynamo, { mustReach: true, log });
    const reader = new SlotReader({ client: dynamo.client, table: dynamo.table, pool: config.pool });
    const [snapshot, lease] = await Promise.all([reader.snapshot(), readLease(dynamo.client, dynamo.table, config.pool)]).catch((err: unknown) => {
      throw err instanceof HsdoError ? err : dynamoFailure(dynamo, err);
    });
    const now = Date.now();
    if (args.json) {
      out(`${JSON.stringify({ pool: config.pool, snapshot: snapshot ?? null, lease: lease ?? null, now }, null, 2)}\n`);
      return snapshot ? 0 : 1;
    }
    if (!snapshot) {
      out(`pool ${config.pool} in table ${dynamo.table}: no snapshot yet (no server has published it)\n`);
      if (lease) out(`lease: ${lease.owner}, epoch ${lease.epoch}${lease.released ? " (released)" : ""}\n`);
      return 1;
    }
    out(`${formatStatus(snapshot, now)}\n`);
    if (lease) out(`lease: ${lease.owner}, epoch ${lease.epoch}${lease.released ? " (released)" : ""}\n`);
    return 0;
  } finally {
    await dynamo.close();
  }
}
