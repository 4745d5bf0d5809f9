import { writeFileSync, renameSync } from "node:fs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { readLease, SlotReader } from "@hsdo/store";
import type { Snapshot } from "@hsdo/core";

export interface StaticTarget {
  addr: string;
  port?: number;
  name: string;
  group?: string;
  az?: string;
  state?: "ready" | "drain";
}

/** Writes the static source's YAML atomically (the source watches the file). */
export function writeTargets(file: string, targets: StaticTarget[]): void {
  const body = targets
    .map((t) => {
      const fields = Object.entries(t)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}: ${typeof v === "string" ? JSON.stringify(v) : String(v)}`);
      return `  - { ${fields.join(", ")} }`;
    })
    .join("\n");
  // An empty list must be written `[]`: a bare `targets:` is null, which the source refuses.
  writeFileSync(`${file}.tmp`, targets.length === 0 ? "targets: []\n" : `targets:\n${body}\n`);
  renameSync(`${file}.tmp`, file);
}

export async function readPool(client: DynamoDBClient, table: string, pool: string): Promise<Snapshot | undefined> {
  return new SlotReader({ client, table, pool }).snapshot();
}

export async function readLeaseOf(client: DynamoDBClient, table: string, pool: string) {
  return readLease(client, table, pool);
}

/** Every item of the pool, raw (lease, head, slots), for assertions on epochs and generations. */
export async function rawItems(client: DynamoDBClient, table: string, pool: string): Promise<Record<string, unknown>[]> {
  const out = await client.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: "#p = :p",
      ExpressionAttributeNames: { "#p": "pool" },
      ExpressionAttributeValues: { ":p": { S: pool } },
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? []).map((i) => unmarshall(i));
}

/** slot -> target name, for the occupied slots of a snapshot. */
export function slotMap(snapshot: Snapshot | undefined): Record<number, string> {
  const m: Record<number, string> = {};
  for (const s of snapshot?.slots ?? []) if (s.state !== "free" && s.name) m[s.slot] = `${s.name}:${s.state}`;
  return m;
}

/** Reads a metric's value from a Prometheus text exposition. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) total += Number(line.split(" ").at(-1));
  }
  return total;
}
