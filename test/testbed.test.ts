import { test } from "node:test";
import assert from "node:assert/strict";
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { startHaproxy, templateBackend, createTestTable, startDynalite } from "@hsdo/testkit";
import { haproxyVersion } from "../scripts/haproxy-preflight.mjs";

test("the test bed starts a real HAProxy with an admin Runtime API socket", async (t) => {
  const haproxy = await startHaproxy({ body: templateBackend("be_app", "srv", 3) });
  t.after(() => haproxy.stop());
  const info = await haproxy.command("show info");
  assert.match(info, /^Name: HAProxy$/m);
  // the version of the binary the bed was asked to run (HSDO_TEST_HAPROXY), whichever it is
  const version = haproxyVersion()?.version;
  assert.match(version ?? "", /^\d+\.\d+/);
  assert.ok(info.split("\n").includes(`Version: ${version}`), info);
  const state = await haproxy.command("show servers state be_app");
  assert.equal(state.split("\n").filter((l) => / srv[123] /.test(l)).length, 3);
});

test("the test bed starts dynalite: a put, then a conditional put that fails", async (t) => {
  const dynalite = await startDynalite();
  t.after(() => dynalite.destroy());
  const client = dynalite.client();
  t.after(() => client.destroy());
  await createTestTable(client, "hsdo");
  const key = { pool: { S: "p" }, slot: { N: "1" } };
  await client.send(new PutItemCommand({ TableName: "hsdo", Item: { ...key, epoch: { N: "2" } } }));
  await assert.rejects(
    client.send(
      new PutItemCommand({
        TableName: "hsdo",
        Item: { ...key, epoch: { N: "1" } },
        ConditionExpression: "attribute_not_exists(#e) OR #e <= :e",
        ExpressionAttributeNames: { "#e": "epoch" },
        ExpressionAttributeValues: { ":e": { N: "1" } },
      }),
    ),
    ConditionalCheckFailedException,
  );
  const got = await client.send(new GetItemCommand({ TableName: "hsdo", Key: key, ConsistentRead: true }));
  assert.equal(got.Item?.epoch?.N, "2");
});
