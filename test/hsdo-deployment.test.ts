// hsdo configured exactly as an HSDO deployment is: HSDO's environment
// variables as strings, no config file, the AWS SDK's own AWS_ENDPOINT_URL_*
// variables pointing at the fake AWS and at dynalite. Only the command
// changes (`hsdo --server`, `hsdo --client`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServersState } from "@hsdo/client";
import { startFakeAws, instanceId, dynaliteWithTable, startHaproxy, templateBackend, startHsdo, freePort, waitFor } from "@hsdo/testkit";

test("an HSDO deployment moves over by changing only the command", async (t) => {
  const { dynalite } = await dynaliteWithTable(t, "hsdo-origins");
  const aws = await startFakeAws();
  t.after(() => aws.stop());
  const launch = Date.UTC(2026, 10, 1);
  const inst = (n: number, az = "eu-west-3a") => ({ id: instanceId(n), ip: `10.0.1.${n}`, az, launchTime: launch + n * 1000, lifecycleState: "InService", healthStatus: "Healthy" as const });
  aws.setGroup("origin-asg", [inst(1), inst(2), inst(3, "eu-west-3b")]);

  const haproxy = await startHaproxy({ body: templateBackend("http-backend", "http-backend", 10) });
  t.after(() => haproxy.stop());
  const cache = mkdtempSync(join(tmpdir(), "hsdo-cache-"));
  t.after(() => rmSync(cache, { recursive: true, force: true }));

  const hsdoEnv = {
    AWS_DEFAULT_REGION: "eu-west-3",
    AWS_ACCESS_KEY_ID: "AKIAFAKE",
    AWS_SECRET_ACCESS_KEY: "fake",
    AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
    AWS_ENDPOINT_URL_AUTO_SCALING: aws.url,
    AWS_ENDPOINT_URL_EC2: aws.url,
    DYNAMODB_TABLE_NAME: "hsdo-origins",
    HAPROXY_BACKEND_SERVERS_LIST_SIZE: "10",
    INTERVAL: "1",
    DEBUG: "false",
  };
  const server = startHsdo("server", ["--server"], {
    ...hsdoEnv,
    SERVER_MODE: "aws",
    SERVER_ASG_NAMES: "origin-asg",
    SERVER_HAPROXY_BACKEND_SERVER_MIN_WEIGHT: "1",
    SERVER_HAPROXY_BACKEND_SERVER_MAX_WEIGHT: "3",
    SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT: "1",
    SERVER_HAPROXY_BACKEND_SERVER_INCREASE_WEIGHT_INTERVAL: "1",
    EXPORTER_PORT: String(await freePort()),
    // hsdo's drain (HSDO had none: a leaving instance vanished at once), shortened for the test.
    HSDO_SERVER_DRAIN: "2s",
  });
  t.after(() => server.stop());
  const client = startHsdo("client", ["--client"], {
    ...hsdoEnv,
    CLIENT_HAPROXY_SOCKET_PATH: haproxy.socket,
    CLIENT_HAPROXY_BACKEND_NAME: "http-backend",
    CLIENT_HAPROXY_BACKEND_BASE_NAME: "http-backend",
    CLIENT_HAPROXY_BACKEND_SERVER_PORT: "8080",
    CLIENT_DEDICATED_ASG: "false",
    EXPORTER_PORT: String(await freePort()),
    // hsdo's one addition: where the last good snapshot is kept (HSDO had none).
    HSDO_CLIENT_CACHE_DIR: cache,
  });
  t.after(() => client.stop());

  const servers = async () => parseServersState(await haproxy.command("show servers state http-backend")).get("http-backend") ?? [];
  const live = async () => {
    const m: Record<string, string> = {};
    for (const s of await servers()) if (s.state !== "maint") m[s.name] = `${s.addr}:${s.port}`;
    return m;
  };
  const fail = () => `server:\n${server.output().slice(-3000)}\nclient:\n${client.output().slice(-3000)}`;

  await waitFor("HAProxy holds the ASG's three instances at full weight", async () => {
    const s = (await servers()).filter((x) => x.state === "ready");
    return s.length === 3 && s.every((x) => x.uweight === 3);
  }, { timeoutMs: 30_000 }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  assert.deepEqual(await live(), {
    "http-backend1": "10.0.1.1:8080",
    "http-backend2": "10.0.1.2:8080",
    "http-backend3": "10.0.1.3:8080",
  });

  // Churn: instance 2 is terminated, 4 and 5 launch; survivors must not move.
  aws.removeInstance(instanceId(2));
  aws.setGroup("origin-asg", [inst(1), inst(3, "eu-west-3b"), inst(4), inst(5, "eu-west-3b")]);
  // Gone from the ASG (not Terminating in it): nothing to drain, slot 2 goes to maint at once.
  await waitFor("instance 2 is gone: slot 2 in maint while 4 and 5 take slots 4 and 5", async () => {
    const s = await servers();
    const by = (n: string) => s.find((x) => x.name === n);
    return by("http-backend2")?.state === "maint" && by("http-backend4")?.addr === "10.0.1.4" && by("http-backend5")?.addr === "10.0.1.5";
  }, { timeoutMs: 30_000 }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  // Then a newcomer takes the lowest free slot: 2.
  aws.setGroup("origin-asg", [inst(1), inst(3, "eu-west-3b"), inst(4), inst(5, "eu-west-3b"), inst(6)]);
  const after = await waitFor("instance 6 in slot 2", async () => {
    const m = await live();
    return m["http-backend2"] === "10.0.1.6:8080" ? m : undefined;
  }, { timeoutMs: 30_000 }).catch((e: Error) => assert.fail(`${e.message}\n${fail()}`));
  assert.deepEqual(after, {
    "http-backend1": "10.0.1.1:8080",
    "http-backend2": "10.0.1.6:8080",
    "http-backend3": "10.0.1.3:8080",
    "http-backend4": "10.0.1.4:8080",
    "http-backend5": "10.0.1.5:8080",
  });
  assert.deepEqual(aws.protocolErrors, []);
  // DescribeInstances was asked about each instance once, never the whole fleet each tick.
  const asked = aws.describedIds;
  assert.equal(new Set(asked).size, asked.length, `instances described more than once: ${asked.join(",")}`);
});
