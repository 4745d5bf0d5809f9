import { HsdoError, PreflightError } from "@hsdo/core";
import { createTable } from "@hsdo/store";
import { loadConfig } from "../load-config.ts";
import { createLogger, levelOf } from "../logger.ts";
import { dynamoFailure, openDynamo } from "../dynamo.ts";
import type { CommonArgs, Out } from "./common.ts";

/** `hsdo table create`: for development and the embedded store; production tables come from infra/. */
export async function tableCreateCommand(args: CommonArgs, out: Out): Promise<number> {
  const { config } = loadConfig(args);
  if (config.dynamodb.endpoint === "embedded" && config.dynamodb.embeddedPath === "") {
    // The in-memory store would be created, report the table, and vanish with this command.
    throw new PreflightError(
      "table create: dynamodb.endpoint is embedded without dynamodb.embeddedPath, an in-memory store that keeps nothing after this command " +
        "(and `hsdo --server`/`--client` create the embedded table themselves); set dynamodb.embeddedPath to a directory to keep it, " +
        "or point dynamodb.endpoint at a real DynamoDB",
    );
  }
  const log = createLogger({ level: levelOf(config) });
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
