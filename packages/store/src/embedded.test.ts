import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { ManualClock } from "@hsdo/core";
import { freePort } from "@hsdo/testkit";
import { createDynamoClient } from "./client.ts";
import { startEmbeddedDynamo, type EmbeddedDynamo } from "./embedded.ts";
import { SlotReader } from "./reader.ts";
import { createTable } from "./table.ts";
import { FencedWriter } from "./writer.ts";

const credentials = { accessKeyId: "embedded", secretAccessKey: "embedded" };

function clientOf(db: EmbeddedDynamo) {
  return createDynamoClient({ endpoint: db.endpoint, region: "local", credentials, maxAttempts: 1 });
}

async function publishOne(db: EmbeddedDynamo, table: string, pool: string): Promise<void> {
  const client = clientOf(db);
  try {
    await createTable(client, table, { pollMs: 10 });
    const term = { epoch: 1, signal: new AbortController().signal };
    const writer = new FencedWriter({ client, table, pool, leader: "srv-a", clock: new ManualClock() });
    const { head } = await writer.stampEpoch(term, 2);
    await writer.publish(term, { base: head, changed: [{ slot: 2, state: "ready", addr: "192.0.2.7", port: 81, name: "n7", weight: 4 }] });
  } finally {
    client.destroy();
  }
}

test("in memory, on any free port of 127.0.0.1: tables and items work through the real SDK, and vanish on close", async (t) => {
  const db = await startEmbeddedDynamo();
  t.after(() => db.close());
  assert.ok(db.port > 0);
  assert.equal(db.endpoint, `http://127.0.0.1:${db.port}`);
  await publishOne(db, "hsdo", "web");
  const client = clientOf(db);
  t.after(() => client.destroy());
  const snap = await new SlotReader({ client, table: "hsdo", pool: "web" }).snapshot();
  assert.equal(snap?.slots[1]?.addr, "192.0.2.7");
  await db.close();
  await assert.rejects(client.send(new ListTablesCommand({})), /ECONNREFUSED|ECONNRESET|socket hang up/);

  const again = await startEmbeddedDynamo();
  t.after(() => again.close());
  const fresh = clientOf(again);
  t.after(() => fresh.destroy());
  assert.deepEqual((await fresh.send(new ListTablesCommand({}))).TableNames, []);
});

test("with a path, the data survives close and restart", async (t) => {
  const path = mkdtempSync(join(tmpdir(), "hsdo-embedded-"));
  t.after(() => rmSync(path, { recursive: true, force: true }));
  const port = await freePort();
  const first = await startEmbeddedDynamo({ path, port });
  t.after(() => first.close());
  assert.equal(first.endpoint, `http://127.0.0.1:${port}`);
  await publishOne(first, "hsdo", "api");
  await first.close();

  const second = await startEmbeddedDynamo({ path });
  t.after(() => second.close());
  const client = clientOf(second);
  t.after(() => client.destroy());
  const snap = await new SlotReader({ client, table: "hsdo", pool: "api" }).snapshot();
  assert.equal(snap?.head.generation, 1);
  assert.deepEqual(snap?.slots[1], { slot: 2, state: "ready", addr: "192.0.2.7", port: 81, name: "n7", weight: 4, generation: 1, epoch: 1 });
});

test("a port in use is a clear error", async (t) => {
  const first = await startEmbeddedDynamo();
  t.after(() => first.close());
  await assert.rejects(startEmbeddedDynamo({ port: first.port }), /embedded DynamoDB cannot listen on 127.0.0.1:\d+: .*EADDRINUSE/);
});
