import { test } from "node:test";
import assert from "node:assert/strict";
import { RetryError, backoffPolicy, withRetry } from "./retry.ts";
import { isThrottling, isTransient } from "./retryable.ts";

test("backoff doubles up to its cap, with jitter within [ceiling/2, ceiling], and stops at maxAttempts", () => {
  const low = backoffPolicy({ maxAttempts: 5, baseMs: 100, maxMs: 300, random: () => 0 });
  const high = backoffPolicy({ maxAttempts: 5, baseMs: 100, maxMs: 300, random: () => 0.999999 });
  assert.deepEqual([1, 2, 3, 4].map((a) => low(a).delayMs), [50, 100, 150, 150]);
  assert.deepEqual([1, 2, 3, 4].map((a) => high(a).delayMs), [100, 200, 300, 300]);
  assert.deepEqual(low(5), { retry: false, delayMs: 0 });
});

test("withRetry retries what the predicates call retryable, and only that", async () => {
  const policy = backoffPolicy({ maxAttempts: 4, baseMs: 1, maxMs: 2 });
  let calls = 0;
  const value = await withRetry(async () => {
    calls += 1;
    if (calls < 3) throw Object.assign(new Error("Rate exceeded"), { name: "Throttling" });
    return "ok";
  }, policy);
  assert.deepEqual([value, calls], ["ok", 3]);

  calls = 0;
  const refused = withRetry(async () => {
    calls += 1;
    throw Object.assign(new Error("bad"), { name: "ValidationError", $metadata: { httpStatusCode: 400 } });
  }, policy);
  await assert.rejects(refused, (err: unknown) => err instanceof RetryError && err.attempts === 1);
  assert.equal(calls, 1);

  calls = 0;
  const exhausted = withRetry(async () => {
    calls += 1;
    throw Object.assign(new Error("boom"), { $metadata: { httpStatusCode: 500 } });
  }, policy);
  await assert.rejects(exhausted, (err: unknown) => err instanceof RetryError && err.attempts === 4);
  assert.equal(calls, 4);
});

test("error predicates read the shapes of SDK, papi and Node errors", () => {
  assert.equal(isThrottling({ name: "RequestLimitExceeded" }), true);
  assert.equal(isThrottling({ $metadata: { httpStatusCode: 429 } }), true);
  assert.equal(isThrottling({ name: "ValidationError" }), false);
  assert.equal(isTransient({ code: "ECONNREFUSED" }), true);
  assert.equal(isTransient({ statusCode: 503 }), true);
  assert.equal(isTransient({ isTimeout: true }), true);
  assert.equal(isTransient(new Error("wrapped", { cause: Object.assign(new Error("x"), { code: "ECONNRESET" }) })), true);
  assert.equal(isTransient({ $metadata: { httpStatusCode: 400 }, name: "ValidationError" }), false);
  assert.equal(isTransient("text"), false);
});
