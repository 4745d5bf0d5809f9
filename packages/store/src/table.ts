import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  type AttributeDefinition,
  type DynamoDBClient,
  type KeySchemaElement,
  type TableDescription,
} from "@aws-sdk/client-dynamodb";
import { HsdoError, PreflightError, sleep, systemClock, type Clock } from "@hsdo/core";
import { TableSchemaError } from "./errors.ts";
import { observed, type Observe } from "./observe.ts";

/** Slot number of the lease item of a pool. */
export const LEASE_SLOT = -1;
/** Slot number of the head item of a pool. */
export const HEAD_SLOT = 0;

export const TABLE_ATTRIBUTE_DEFINITIONS: readonly AttributeDefinition[] = [
  { AttributeName: "pool", AttributeType: "S" },
  { AttributeName: "slot", AttributeType: "N" },
];

export const TABLE_KEY_SCHEMA: readonly KeySchemaElement[] = [
  { AttributeName: "pool", KeyType: "HASH" },
  { AttributeName: "slot", KeyType: "RANGE" },
];

export const TABLE_BILLING_MODE = "PAY_PER_REQUEST";

export interface CreateTableOptions {
  /** How long to wait for the table to become ACTIVE (default 120 s: real DynamoDB takes seconds). */
  timeoutMs?: number;
  /** Delay between DescribeTable polls (default 500 ms). */
  pollMs?: number;
  clock?: Clock;
  observe?: Observe;
}

export interface CreateTableResult {
  /** False when the table already existed with the right key schema. */
  created: boolean;
  table: TableDescription;
}

/**
 * Creates the hsdo table and waits until it is ACTIVE. Idempotent: an
 * existing table with the right key schema is fine, whatever its billing
 * mode; a table with another key schema is a TableSchemaError.
 */
export async function createTable(
  client: DynamoDBClient,
  tableName: string,
  options: CreateTableOptions = {},
): Promise<CreateTableResult> {
  let created = true;
  try {
    await observed("table.create", options.observe, () =>
      client.send(
        new CreateTableCommand({
          TableName: tableName,
          AttributeDefinitions: [...TABLE_ATTRIBUTE_DEFINITIONS],
          KeySchema: [...TABLE_KEY_SCHEMA],
          BillingMode: TABLE_BILLING_MODE,
        }),
      ),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
    created = false;
  }
  const table = await waitForActive(client, tableName, options);
  return { created, table };
}

/**
 * Checks that the table exists, has hsdo's key schema and is ACTIVE; throws an
 * error that says what to do otherwise (PreflightError when the operator must
 * create or change the table).
 */
export async function checkTable(client: DynamoDBClient, tableName: string, observe?: Observe): Promise<TableDescription> {
  const table = await describe(client, tableName, observe);
  if (!table) {
    throw new PreflightError(`table ${tableName} does not exist: create it with \`hsdo table create\` or the Terraform in infra/`);
  }
  if (table.TableStatus !== "ACTIVE") {
    throw new HsdoError(`table ${tableName} is ${table.TableStatus ?? "in an unknown state"}, not ACTIVE yet`);
  }
  return table;
}

async function describe(client: DynamoDBClient, tableName: string, observe?: Observe): Promise<TableDescription | undefined> {
  try {
    const out = await observed("table.describe", observe, () => client.send(new DescribeTableCommand({ TableName: tableName })));
    const table = out.Table;
    if (!table) throw new HsdoError(`DescribeTable ${tableName} answered without a table description`);
    const problem = schemaProblem(table);
    if (problem) throw new TableSchemaError(tableName, problem);
    return table;
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return undefined;
    throw err;
  }
}

/** Describes a key schema that is not hsdo's, or returns undefined when it is. */
export function schemaProblem(table: Pick<TableDescription, "KeySchema" | "AttributeDefinitions">): string | undefined {
  const keys = table.KeySchema ?? [];
  const types = new Map((table.AttributeDefinitions ?? []).map((d) => [d.AttributeName, d.AttributeType]));
  const render = keys.map((k) => `${k.AttributeName} (${types.get(k.AttributeName) ?? "?"}, ${k.KeyType})`).join(" + ");
  const ok =
    keys.length === TABLE_KEY_SCHEMA.length &&
    TABLE_KEY_SCHEMA.every(
      (want, i) =>
        keys[i]?.AttributeName === want.AttributeName &&
        keys[i]?.KeyType === want.KeyType &&
        types.get(want.AttributeName) === TABLE_ATTRIBUTE_DEFINITIONS.find((d) => d.AttributeName === want.AttributeName)?.AttributeType,
    );
  return ok ? undefined : render || "(none)";
}

async function waitForActive(client: DynamoDBClient, tableName: string, options: CreateTableOptions): Promise<TableDescription> {
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const deadline = clock.monotonic() + timeoutMs;
  let status = "unknown";
  for (;;) {
    const table = await describe(client, tableName, options.observe);
    status = table?.TableStatus ?? "not found";
    if (table && status === "ACTIVE") return table;
    if (clock.monotonic() >= deadline) break;
    await sleep(options.pollMs ?? 500);
  }
  throw new HsdoError(`table ${tableName} is still ${status} after ${timeoutMs} ms; check it in the AWS console and try again`);
}
