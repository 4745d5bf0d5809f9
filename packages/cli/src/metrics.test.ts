import { test } from "node:test";
import assert from "node:assert/strict";
import { OPERATIONS, OUTCOMES } from "@hsdo/store";
import { Metrics } from "./metrics.ts";

test("every DynamoDB operation the store reports is served from the start, at 0", async () => {
  const metrics = new Metrics({ processMetrics: false });
  const text = await metrics.registry.metrics();
  for (const operation of OPERATIONS) {
    for (const outcome of OUTCOMES) {
      assert.ok(text.includes(`hsdo_dynamodb_requests_total{operation="${operation}",outcome="${outcome}"} 0`), `${operation} ${outcome}`);
    }
    assert.ok(text.includes(`hsdo_dynamodb_consumed_capacity_total{operation="${operation}"} 0`), operation);
  }
  metrics.observeDynamo("head.read", "ok", 0.5);
  assert.ok((await metrics.registry.metrics()).includes(`hsdo_dynamodb_consumed_capacity_total{operation="head.read"} 0.5`));
});
