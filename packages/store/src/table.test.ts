import { test } from "node:test";
import assert from "node:assert/strict";
import { CreateTableCommand, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { HsdoError, PreflightError } from "@hsdo/core";
import { startDynalite, recorder, uniqueName } from "@hsdo/testkit";
import { createDynamoClient } from "./client.ts";
import { TableSchemaError } from "./errors.ts";
import { checkTable, createTable, schemaProblem, TABLE_KEY_SCHEMA } from "./table.ts";

const dynalite = await startDynalite();
const client = dynalite.client();
test.after(async () => {
  client.destroy();
  await dynalite.destroy();
});

test("createTable creates the table ACTIVE with pool (S, HASH) + slot (N, RANGE), on demand", async () => {
  const table = uniqueName("tbl");
  const rec = recorder();
  const result = await createTable(client, table, { observe: rec.observe, pollMs: 20 });
  assert.equal(result.created, true);
  assert.equal(result.table.TableStatus, "ACTIVE");
  assert.deepEqual(result.table.KeySchema, [...TABLE_KEY_SCHEMA]);
  assert.equal(result.table.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST");
  assert.equal(rec.count("table.create", "ok"), 1);
  assert.equal((await checkTable(client, table)).TableStatus, "ACTIVE");
});

test("createTable is idempotent: a second call finds the table and succeeds", async () => {
  const table = uniqueName("tbl");
  await createTable(client, table, { pollMs: 20 });
  const again = await createTable(client, table, { pollMs: 20 });
  assert.equal(again.created, false);
  assert.equal(again.table.TableStatus, "ACTIVE");
});

test("an existing table with another key schema is a clear TableSchemaError", async () => {
  const table = uniqueName("tbl");
  await client.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  const err = await createTable(client, table, { pollMs: 20 }).then(
    () => assert.fail("createTable accepted a table with the wrong key schema"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TableSchemaError);
  assert.ok(err instanceof PreflightError);
  assert.equal(err.table, table);
  assert.equal(err.found, "id (S, HASH)");
  assert.match(err.message, /needs pool \(S, HASH\) \+ slot \(N, RANGE\)/);
  await assert.rejects(checkTable(client, table), TableSchemaError);
});

test("schemaProblem also catches the right names with the wrong types", () => {
  const found = schemaProblem({
    KeySchema: [...TABLE_KEY_SCHEMA],
    AttributeDefinitions: [
      { AttributeName: "pool", AttributeType: "S" },
      { AttributeName: "slot", AttributeType: "S" },
    ],
  });
  assert.equal(found, "pool (S, HASH) + slot (S, RANGE)");
});

test("checkTable names a missing table and how to create it", async () => {
  const err = await checkTable(client, uniqueName("missing")).then(
    () => assert.fail("checkTable accepted a missing table"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof HsdoError);
  assert.match(err.message, /does not exist: create it with `hsdo table create`/);
});

test("createDynamoClient with empty endpoint and region leaves both to the SDK's environment", async (t) => {
  const saved = { ...process.env };
  t.after(() => {
    for (const key of ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });
  process.env.AWS_ENDPOINT_URL_DYNAMODB = dynalite.endpoint;
  process.env.AWS_REGION = "eu-west-3";
  process.env.AWS_ACCESS_KEY_ID = "test";
  process.env.AWS_SECRET_ACCESS_KEY = "test";
  const sdk = createDynamoClient({ endpoint: "", region: "" });
  t.after(() => sdk.destroy());
  assert.equal(await sdk.config.region(), "eu-west-3");
  const table = uniqueName("tbl");
  await createTable(sdk, table, { pollMs: 20 });
  const listed = await client.send(new ListTablesCommand({}));
  assert.ok(listed.TableNames?.includes(table), "the table was created through the endpoint from AWS_ENDPOINT_URL_DYNAMODB");

  const explicit = createDynamoClient({ endpoint: "http://127.0.0.1:9", region: "us-east-2" });
  t.after(() => explicit.destroy());
  assert.equal(await explicit.config.region(), "us-east-2");
  const endpoint = await explicit.config.endpoint?.();
  assert.equal(endpoint?.hostname, "127.0.0.1");
  assert.equal(endpoint?.port, 9);
});
