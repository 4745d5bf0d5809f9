/**
 * The store's test bed: unique names, an observe hook that records, raw
 * access to items, and one dynalite with a table per test file.
 */
import { PutItemCommand, QueryCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { after } from "node:test";
import { createTable, type Observe, type Outcome } from "@hsdo/store";
import { startDynalite, type DynaliteHandle } from "./dynalite.ts";

let counter = 0;
/** A name unique in this test process (tables need >= 3 characters). */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

export interface Recorded {
  operation: string;
  outcome: Outcome;
  consumedCapacity: number | undefined;
}

export function recorder(then?: (entry: Recorded) => void): { observe: Observe; calls: Recorded[]; count(op: string, outcome?: Outcome): number } {
  const calls: Recorded[] = [];
  return {
    calls,
    observe: (operation, outcome, consumedCapacity) => {
      const entry = { operation, outcome, consumedCapacity };
      calls.push(entry);
      then?.(entry);
    },
    count: (op, outcome) => calls.filter((c) => c.operation === op && (outcome === undefined || c.outcome === outcome)).length,
  };
}

/** Every item of a pool (lease, head, slots) as plain values, keyed by slot number. */
export async function poolItems(client: DynamoDBClient, table: string, pool: string): Promise<Map<number, Record<string, unknown>>> {
  const out = new Map<number, Record<string, unknown>>();
  let start: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "#p = :p",
        ExpressionAttributeNames: { "#p": "pool" },
        ExpressionAttributeValues: marshall({ ":p": pool }),
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      const plain = unmarshall(item);
      out.set(plain.slot as number, plain);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

/** Writes an item exactly as given, bypassing every guard: to plant corrupt, stale or half-published items. */
export async function putRaw(client: DynamoDBClient, table: string, item: Record<string, unknown>): Promise<void> {
  await client.send(new PutItemCommand({ TableName: table, Item: marshall(item, { removeUndefinedValues: true }) }));
}

/** Like putRaw, for items JavaScript values cannot express (a 30-digit number). */
export async function putAttributeValues(
  client: DynamoDBClient,
  table: string,
  item: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue>,
): Promise<void> {
  await client.send(new PutItemCommand({ TableName: table, Item: item }));
}

/** One dynalite and one table for a whole test file, stopped when the file's tests end. */
export async function fileBed(prefix: string): Promise<{ dynalite: DynaliteHandle; client: DynamoDBClient; table: string }> {
  const dynalite = await startDynalite();
  const client = dynalite.client();
  const table = uniqueName(prefix);
  await createTable(client, table, { pollMs: 20 });
  after(async () => {
    client.destroy();
    await dynalite.destroy();
  });
  return { dynalite, client, table };
}
