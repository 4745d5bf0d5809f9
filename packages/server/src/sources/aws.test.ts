import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, SourceError, type Target } from "@hsdo/core";
import type { AwsSourceConfig } from "@hsdo/core";
import { instanceId, startFakeAws, type FakeAws, type FakeInstanceInput } from "@hsdo/testkit";
import { AwsSource, createAwsClients } from "./aws.ts";
import { BoundedBackoff, SdkRetryStrategy } from "./aws-retry.ts";

const T0 = Date.UTC(2025, 5, 1);

function inst(n: number, patch: Partial<FakeInstanceInput> = {}): FakeInstanceInput {
  return { id: instanceId(n), ip: `10.0.0.${n}`, az: n % 2 ? "eu-west-1a" : "eu-west-1b", launchTime: T0 + n * 1000, ...patch };
}

interface Bed {
  fake: FakeAws;
  source: AwsSource;
  clock: ManualClock;
}

async function bed(t: TestContext, config: Partial<AwsSourceConfig> = {}, options: { batch?: number; timeoutMs?: number } = {}): Promise<Bed> {
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  // The SDK resolves endpoints, region and credentials from the environment, as in production.
  Object.assign(process.env, fake.env());
  // The SDK's own retries (3 attempts by default), with waits of a few ms.
  const clients = createAwsClients({ maxBackoffMs: 5, ...(options.timeoutMs ? { requestTimeoutMs: options.timeoutMs } : {}) });
  t.after(() => {
    clients.autoScaling.destroy();
    clients.ec2.destroy();
  });
  const clock = new ManualClock(T0 + 3_600_000);
  const source = new AwsSource(
    { asgNames: ["web-a", "web-b"], lifecycleHook: "", ...config },
    clients,
    { clock, ...(options.batch ? { describeBatchSize: options.batch } : {}) },
  );
  t.after(() => assert.deepEqual(fake.protocolErrors, [], "the SDK's requests were all well-formed"));
  return { fake, source, clock };
}

const byId = (targets: Target[]) => new Map(targets.map((t) => [t.id, t]));

test("both APIs are paginated: 5 instances across 2 groups, one group and two instances per page", async (t) => {
  const { fake, source } = await bed(t, { port: 8080 });
  fake.setGroup("web-a", [inst(1), inst(2), inst(3)]);
  fake.setGroup("web-b", [inst(4), inst(5)]);
  fake.setPageSize({ groups: 1, instances: 2 });

  const targets = await source.list();
  assert.equal(fake.count("DescribeAutoScalingGroups"), 2);
  assert.equal(fake.count("DescribeInstances"), 3);
  assert.deepEqual(
    targets.map((x) => x.id),
    [1, 2, 3, 4, 5].map(instanceId),
    "sorted by launch time",
  );
  assert.deepEqual(targets[3], {
    id: instanceId(4),
    addr: "10.0.0.4",
    port: 8080,
    group: "web-b",
    az: "eu-west-1b",
    launchedAt: T0 + 4000,
    health: "ready",
  });
});

test("DescribeInstances is asked only for instance ids never seen, and forgets ids gone from the groups", async (t) => {
  const { fake, source } = await bed(t);
  fake.setGroup("web-a", [inst(1), inst(2)]);
  fake.setGroup("web-b", [inst(3)]);
  await source.list();
  await source.list();
  assert.deepEqual([...fake.describedIds].sort(), [1, 2, 3].map(instanceId));
  assert.equal(fake.count("DescribeInstances"), 1);
  assert.equal(fake.count("DescribeAutoScalingGroups"), 2);

  fake.setGroup("web-b", [inst(3), inst(4)]);
  fake.removeInstance(instanceId(1));
  const targets = await source.list();
  assert.deepEqual(fake.describedIds.slice(3), [instanceId(4)]);
  assert.deepEqual(targets.map((x) => x.id), [2, 3, 4].map(instanceId));

  // Forgotten, so asked again if it ever came back (its facts could not be trusted as ours).
  fake.setGroup("web-a", [inst(1), inst(2)]);
  await source.list();
  assert.deepEqual(fake.describedIds.slice(4), [instanceId(1)]);
});

test("DescribeInstances asks in batches of at most describeBatchSize ids", async (t) => {
  const { fake, source } = await bed(t, {}, { batch: 2 });
  fake.setGroup("web-a", [inst(1), inst(2), inst(3)]);
  fake.setGroup("web-b", [inst(4), inst(5)]);
  assert.equal((await source.list()).length, 5);
  const sizes = fake.calls.filter((c) => c.action === "DescribeInstances").map((c) => Object.keys(c.params).filter((k) => k.startsWith("InstanceId.")).length);
  assert.deepEqual(sizes, [2, 2, 1]);
});

test("throttling twice, then success: the list comes back whole", async (t) => {
  const { fake, source } = await bed(t);
  fake.setGroup("web-a", [inst(1)]);
  fake.setGroup("web-b", [inst(2)]);
  fake.fail("DescribeAutoScalingGroups", "throttle", 2);
  fake.fail("DescribeInstances", "throttle", 2);
  const targets = await source.list();
  assert.equal(targets.length, 2);
  assert.deepEqual(
    fake.calls.map((c) => `${c.action} ${c.code ?? c.status}`),
    [
      "DescribeAutoScalingGroups Throttling",
      "DescribeAutoScalingGroups Throttling",
      "DescribeAutoScalingGroups 200",
      "DescribeInstances RequestLimitExceeded",
      "DescribeInstances RequestLimitExceeded",
      "DescribeInstances 200",
    ],
  );
});

test("a 500 answer that outlasts the retries throws SourceError, never a partial list", async (t) => {
  const { fake, source } = await bed(t);
  fake.setGroup("web-a", [inst(1)]);
  fake.setGroup("web-b", [inst(2)]);
  fake.fail("DescribeAutoScalingGroups", "internal", 3);
  await assert.rejects(source.list(), (err: unknown) => {
    assert.ok(err instanceof SourceError);
    assert.match(err.message, /^aws: DescribeAutoScalingGroups failed after 3 attempts: InternalFailure: /);
    return true;
  });
  assert.equal((await source.list()).length, 2, "works again once AWS does");

  // A failure on a new instance's details fails the whole list, not just that instance.
  fake.setGroup("web-b", [inst(2), inst(3)]);
  fake.fail("DescribeInstances", "internal", 3);
  await assert.rejects(source.list(), /DescribeInstances failed after 3 attempts: InternalError/);
  assert.equal((await source.list()).length, 3);
});

test("a request that hangs is timed out and retried; an abort ends list() at once", { timeout: 10_000 }, async (t) => {
  const { fake, source } = await bed(t, {}, { timeoutMs: 300 });
  fake.setGroup("web-a", [inst(1)]);
  fake.setGroup("web-b", []);
  fake.fail("DescribeAutoScalingGroups", "hang");
  assert.equal((await source.list()).length, 1);
  assert.equal(fake.count("DescribeAutoScalingGroups"), 2);

  fake.fail("DescribeAutoScalingGroups", "hang");
  const controller = new AbortController();
  const pending = source.list(controller.signal);
  setImmediate(() => controller.abort());
  await assert.rejects(pending, /DescribeAutoScalingGroups failed after 1 attempt: aborted/);
});

test("lifecycle states and health classify each instance", async (t) => {
  const { fake, source } = await bed(t, { lifecycleHook: "hsdo-drain" });
  fake.setGroup("web-a", [
    inst(1),
    inst(2, { healthStatus: "Unhealthy" }),
    inst(3, { lifecycleState: "Pending" }),
    inst(4, { lifecycleState: "Terminating:Wait" }),
    inst(5, { lifecycleState: "Standby" }),
    inst(6, { lifecycleState: "Detaching" }),
  ]);
  fake.setGroup("web-b", [inst(7, { ip: undefined }), inst(8, { inEc2: false }), inst(9, { lifecycleState: "EnteringStandby" })]);
  const got = byId(await source.list());
  const health = (n: number) => got.get(instanceId(n))?.health;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 9].map(health),
    ["ready", "leaving", "pending", "leaving", "leaving", "leaving", "pending", "pending", "leaving"],
  );
  assert.equal(got.get(instanceId(4))?.lifecycleHook, "hsdo-drain");
  assert.equal(got.get(instanceId(5))?.lifecycleHook, undefined);
  assert.equal(got.get(instanceId(7))?.addr, "", "no private IP yet");
  assert.equal(got.get(instanceId(8))?.addr, "", "not yet known to EC2");

  // EC2 catches up: the instances without facts are asked again and become ready.
  fake.updateInstance(instanceId(7), { ip: "10.0.0.7" });
  fake.updateInstance(instanceId(8), { inEc2: true });
  const later = byId(await source.list());
  assert.deepEqual([later.get(instanceId(7))?.health, later.get(instanceId(8))?.addr], ["ready", "10.0.0.8"]);
});

test("a configured group that does not exist is named in the error", async (t) => {
  const { fake, source } = await bed(t, { asgNames: ["web-a", "web-typo"] });
  fake.setGroup("web-a", [inst(1)]);
  await assert.rejects(source.list(), (err: unknown) => {
    assert.ok(err instanceof SourceError);
    assert.match(err.message, /Auto Scaling group "web-typo" not found in region eu-west-1/);
    return true;
  });
});

test("completeLifecycle sends CompleteLifecycleAction CONTINUE with the configured hook", async (t) => {
  const { fake, source } = await bed(t, { lifecycleHook: "hsdo-drain" });
  fake.setGroup("web-a", [inst(1)]);
  fake.setGroup("web-b", [inst(2, { lifecycleState: "Terminating:Wait" })]);
  fake.addLifecycleHook("web-b", "hsdo-drain");
  const leaving = (await source.list()).find((x) => x.lifecycleHook !== undefined);
  assert.ok(leaving);
  await source.completeLifecycle(leaving);
  assert.deepEqual(fake.completions, [{ hook: "hsdo-drain", group: "web-b", instanceId: instanceId(2), result: "CONTINUE" }]);
  const after = byId(await source.list()).get(instanceId(2));
  assert.deepEqual([after?.health, after?.lifecycleHook], ["leaving", undefined]);

  // Completing again (a retried tick) is harmless: the action already ended.
  await source.completeLifecycle(leaving);
  assert.equal(fake.completions.length, 1);
  assert.equal(fake.calls.filter((c) => c.action === "CompleteLifecycleAction").at(-1)?.code, "ValidationError");
});

test("pollIntervalMs: ticks within the interval answer from the last listing, one DescribeAutoScalingGroups per interval", async (t) => {
  const { fake, source, clock } = await bed(t, { asgNames: ["web-a"], pollIntervalMs: 5000 });
  fake.setGroup("web-a", [inst(1)]);
  assert.deepEqual((await source.list()).map((x) => x.id), [instanceId(1)]);
  fake.setGroup("web-a", [inst(1), inst(2)]);
  for (let i = 0; i < 4; i++) {
    clock.advance(1000);
    assert.deepEqual((await source.list()).map((x) => x.id), [instanceId(1)], "the last answer, no call");
  }
  assert.equal(fake.count("DescribeAutoScalingGroups"), 1);
  clock.advance(1000);
  assert.deepEqual((await source.list()).map((x) => x.id), [instanceId(1), instanceId(2)]);
  assert.equal(fake.count("DescribeAutoScalingGroups"), 2);
});

test("pollIntervalMs 0 asks at every call, as HSDO did; a failed listing is not cached", async (t) => {
  const { fake, source } = await bed(t, { asgNames: ["web-a"], pollIntervalMs: 0 });
  fake.setGroup("web-a", [inst(1)]);
  await source.list();
  await source.list();
  assert.equal(fake.count("DescribeAutoScalingGroups"), 2);
});

test("retries are the SDK's: AWS_MAX_ATTEMPTS sets the attempts, AWS_RETRY_MODE=adaptive picks the adaptive strategy", async (t) => {
  process.env.AWS_MAX_ATTEMPTS = "5";
  process.env.AWS_RETRY_MODE = "adaptive";
  t.after(() => {
    delete process.env.AWS_MAX_ATTEMPTS;
    delete process.env.AWS_RETRY_MODE;
  });
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  Object.assign(process.env, fake.env());
  const clients = createAwsClients({ maxBackoffMs: 5 });
  t.after(() => {
    clients.autoScaling.destroy();
    clients.ec2.destroy();
  });
  const source = new AwsSource({ asgNames: ["web-a"], lifecycleHook: "" }, clients, { clock: new ManualClock(T0) });
  fake.setGroup("web-a", [inst(1)]);
  fake.fail("DescribeAutoScalingGroups", "internal", 4);
  assert.equal((await source.list()).length, 1, "the fifth attempt answers");
  assert.equal(fake.count("DescribeAutoScalingGroups"), 5);
  const strategy = (await clients.autoScaling.config.retryStrategy()) as SdkRetryStrategy;
  assert.ok(strategy instanceof SdkRetryStrategy);
  assert.equal(await strategy.mode(), "adaptive");
  assert.equal(await strategy.maxAttempts(), 5);
  fake.fail("DescribeAutoScalingGroups", "internal", 5);
  await assert.rejects(source.list(), /DescribeAutoScalingGroups failed after 5 attempts: InternalFailure/);
});

test("the SDK's backoff, capped: full jitter below min(base * 2^retries, maxDelayMs)", () => {
  const top = new BoundedBackoff(1000, () => 0.999999);
  top.setDelayBase(100);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((i) => top.computeNextBackoffDelay(i)), [99, 199, 399, 799, 999, 999]);
  top.setDelayBase(500); // throttling
  assert.equal(top.computeNextBackoffDelay(0), 499);
  assert.equal(new BoundedBackoff(1000, () => 0).computeNextBackoffDelay(5), 0);
});
