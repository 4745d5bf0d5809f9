import { CreateTableCommand, DescribeTableCommand, PutItemCommand, ScanCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { HsdoItem } from "@hsdo/core";
import { waitFor } from "./wait.ts";

/**
 * HSDO's table exactly as HSDO (BedrockStreaming/hsdo) creates and fills it:
 * hash key BackendServerID (N) only (its README's terraform, PROVISIONED
 * 20/20), items written by boto3 (Python ints as N, strings as S).
 */
export async function createHsdoTable(db: DynamoDBClient, table: string): Promise<void> {
  await db.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "BackendServerID", AttributeType: "N" }],
      KeySchema: [{ AttributeName: "BackendServerID", KeyType: "HASH" }],
      BillingMode: "PROVISIONED",
      ProvisionedThroughput: { ReadCapacityUnits: 20, WriteCapacityUnits: 20 },
    }),
  );
  await waitFor(`HSDO table ${table} ACTIVE`, async () => (await db.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus === "ACTIVE");
}

/** A free slot as HSDO's server creates it at start (ServerModel's defaults, src/server/server.py). */
export function hsdoFree(id: number): HsdoItem {
  return { BackendServerID: id, IPAddress: "none", ServerName: "none", ASG: "none", Weight: 0, BackendServerStatus: "disabled", LastWeightUpdate: "0-0-0 00:00:00.000000" };
}

/** A slot HSDO's addServer filled (weight 1, then its ramp), LastWeightUpdate as str(datetime.now()). */
export function hsdoEnabled(id: number, target: { id: string; ip: string; asg?: string; weight: number }): HsdoItem {
  const item: HsdoItem = {
    BackendServerID: id,
    IPAddress: target.ip,
    ServerName: target.id,
    Weight: target.weight,
    BackendServerStatus: "enabled",
    LastWeightUpdate: "2025-06-01 11:59:30.123456",
  };
  // Items migrated from HSDO v2 have no ASG at all.
  if (target.asg !== undefined) item.ASG = target.asg;
  return item;
}

export async function putHsdoItems(db: DynamoDBClient, table: string, items: readonly HsdoItem[]): Promise<void> {
  for (const item of items) await db.send(new PutItemCommand({ TableName: table, Item: marshall(item) }));
}

/** Every item of an HSDO table, sorted by BackendServerID, to check it was left untouched. */
export async function hsdoItems(db: DynamoDBClient, table: string): Promise<HsdoItem[]> {
  const out = await db.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
  return (out.Items ?? []).map((i) => unmarshall(i) as HsdoItem).sort((a, b) => Number(a.BackendServerID) - Number(b.BackendServerID));
}
