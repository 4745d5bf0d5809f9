import { DescribeTableCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { PreflightError, errorMessage, type HsdoItem } from "@hsdo/core";

/**
 * Reading HSDO's table (BedrockStreaming/hsdo) for `hsdo import-hsdo`: its
 * only key is BackendServerID (N), one item per slot (docs/ARCHITECTURE.md,
 * "Moving from HSDO"). Read only: nothing here writes.
 */
export const HSDO_KEY = "BackendServerID";

/**
 * Every item of HSDO's table, by a consistent Scan, page after page (HSDO's
 * server is stopped: this is its last state). Refuses (PreflightError) a
 * missing table and one whose key is not HSDO's, so a wrong name cannot pass
 * for an empty HSDO table. Other DynamoDB errors are rethrown unchanged.
 */
export async function scanHsdoTable(client: DynamoDBClient, table: string, where = "DynamoDB"): Promise<HsdoItem[]> {
  await checkHsdoSchema(client, table, where);
  const items: HsdoItem[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }));
    for (const raw of page.Items ?? []) items.push(plain(raw, table));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return items;
}

async function checkHsdoSchema(client: DynamoDBClient, table: string, where: string): Promise<void> {
  let out;
  try {
    out = await client.send(new DescribeTableCommand({ TableName: table }));
  } catch (err) {
    if (err instanceof Error && err.name === "ResourceNotFoundException") {
      throw new PreflightError(`table ${table} not found at ${where} (check --table, the region and the endpoint)`, { cause: err });
    }
    throw err;
  }
  const keys = out.Table?.KeySchema ?? [];
  const types = new Map((out.Table?.AttributeDefinitions ?? []).map((a) => [a.AttributeName, a.AttributeType]));
  if (keys.length !== 1 || keys[0]!.AttributeName !== HSDO_KEY || types.get(HSDO_KEY) !== "N") {
    const key = keys.map((k) => `${k.AttributeName} (${k.KeyType}, ${types.get(k.AttributeName)})`).join(", ");
    throw new PreflightError(`table ${table} is not an HSDO table: its key is ${key || "unknown"}; HSDO's is ${HSDO_KEY} (HASH, N)`);
  }
}

function plain(raw: Record<string, AttributeValue>, table: string): HsdoItem {
  try {
    return unmarshall(raw) as HsdoItem;
  } catch (err) {
    throw new PreflightError(`an item of table ${table} cannot be read (${errorMessage(err)}): ${JSON.stringify(raw).slice(0, 200)}`);
  }
}
