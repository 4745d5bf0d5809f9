import { HsdoError } from "@hsdo/core";
import { createTable } from "@hsdo/store";
import { loadConfig } from "../load-config.ts";
import { createLogger } from "../logger.ts";
import { dynamoFailure, openDynamo } from "../dynamo.ts";
import type { CommonArgs, Out } from "./common.ts";

/** `hsdo table create`: for development and the embedded store; production tables come from infra/. */
export async function tableCreateCommand(args: CommonArgs, out: Out): Promise<number> {
  const { config } = loadConfig(args);
  const log = createLogger({ debug: config.debug });
  const dynamo = await openDynamo(config, log);
  try {
    out(`creating table ${dynamo.table} (pool S, slot N, on demand)...\n`);
    const r = await createTable(dynamo.client, dynamo.table).catch((err: unknown) => {
      throw err instanceof HsdoError ? err : dynamoFailure(dynamo, err);
    });
    out(r.created ? `table ${dynamo.table} created and ACTIVE\n` : `table ${dynamo.table} already exists with hsdo's key schema\n`);
    return 0;
  } finally {
    await dynamo.close();
  }
}
