import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { PreflightError } from "@hsdo/core";
import { freePort } from "@hsdo/testkit";
import { readAvailabilityZone } from "./imds.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A fake of the instance metadata service, speaking IMDSv2 on 127.0.0.1. */
async function fakeImds(t: { after(fn: () => Promise<void>): void }, handler: Handler): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const addr = server.address();
  return `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
}

function imdsV2(az: string, seen: string[] = []): Handler {
  return (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === "PUT" && req.url === "/latest/api/token") {
      if (!req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) return void res.writeHead(400).end();
      return void res.end("TOKEN-123");
    }
    if (req.method === "GET" && req.url === "/latest/meta-data/placement/availability-zone") {
      if (req.headers["x-aws-ec2-metadata-token"] !== "TOKEN-123") return void res.writeHead(401).end();
      return void res.end(az);
    }
    res.writeHead(404).end();
  };
}

test("reads the AZ with IMDSv2: a token, then the metadata with it", async (t) => {
  const seen: string[] = [];
  const baseUrl = await fakeImds(t, imdsV2("eu-west-3b", seen));
  assert.equal(await readAvailabilityZone({ baseUrl }), "eu-west-3b");
  assert.deepEqual(seen, ["PUT /latest/api/token", "GET /latest/meta-data/placement/availability-zone"]);
});

test("failures say what went wrong and what to set instead", async (t) => {
  const expectFailure = async (baseUrl: string, reason: RegExp, timeoutMs = 1000) =>
    assert.rejects(readAvailabilityZone({ baseUrl, timeoutMs }), (err: unknown) => {
      assert.ok(err instanceof PreflightError);
      assert.match(err.message, /^client\.az is "auto" but this node's AZ could not be read from the EC2 instance metadata service at http:/);
      assert.match(err.message, reason);
      assert.match(err.message, /set client\.az to the AZ name/);
      return true;
    });

  await expectFailure(await fakeImds(t, (_req, res) => void res.writeHead(403).end()), /token request answered HTTP 403/);
  await expectFailure(
    await fakeImds(t, (req, res) => (req.method === "PUT" ? void res.end("T") : void res.writeHead(401).end())),
    /availability-zone request answered HTTP 401/,
  );
  await expectFailure(await fakeImds(t, imdsV2("eu-west-3b; rm -rf /")), /answer "eu-west-3b; rm -rf \/" is not an AZ name/);
  await expectFailure(await fakeImds(t, () => {}), /token request failed: .*(timeout|aborted)/i, 200);
  await expectFailure(`http://127.0.0.1:${await freePort()}`, /token request failed/);
});
