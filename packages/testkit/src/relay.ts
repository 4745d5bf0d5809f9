import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One DynamoDB request as the relay saw it: the operation (from X-Amz-Target) and its JSON body. */
export interface RelayedRequest {
  operation: string;
  body: Record<string, unknown>;
}

/**
 * What the relay does with a request:
 * - pass: forward it, answer with dynamo's answer;
 * - hold: keep it unsent and never answer (the SDK times out and retries);
 *   release() sends it to dynamo later, as a request held in the network would land;
 * - swallow: forward it (it lands) but never answer: an answer lost on the way back.
 */
export type RelayAction = "pass" | "hold" | "swallow";

export interface HeldRequest extends RelayedRequest {
  /** Sends the held request now; resolves with dynamo's answer (which nobody else sees). */
  release(): Promise<{ status: number; body: string }>;
}

export interface DynamoRelay {
  endpoint: string;
  /** Decides per request; default: pass. */
  rule: (req: RelayedRequest) => RelayAction;
  held: HeldRequest[];
  seen: RelayedRequest[];
  close(): Promise<void>;
}

/**
 * An HTTP relay in front of dynalite, for tests that need a request to land
 * late or its answer to be lost: the SDK and dynalite stay real, only the
 * wire between them misbehaves (dynalite does not check signatures, so the
 * forwarded request is accepted as sent).
 */
export async function startDynamoRelay(upstream: string): Promise<DynamoRelay> {
  const target = new URL(upstream);
  const forward = (headers: IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: target.hostname, port: target.port, method: "POST", path: "/", headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  const sockets = new Set<import("node:net").Socket>();
  const relay: DynamoRelay = {
    endpoint: "",
    rule: () => "pass",
    held: [],
    seen: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const operation = String(req.headers["x-amz-target"] ?? "").split(".").pop() ?? "";
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      } catch {
        /* not JSON: passed as is */
      }
      const seen = { operation, body };
      relay.seen.push(seen);
      const action = relay.rule(seen);
      if (action === "hold") {
        relay.held.push({
          ...seen,
          release: async () => {
            const answer = await forward(req.headers, raw);
            return { status: answer.status, body: answer.body.toString("utf8") };
          },
        });
        return;
      }
      forward(req.headers, raw).then(
        (answer) => {
          if (action === "swallow") return;
          res.writeHead(answer.status, answer.headers);
          res.end(answer.body);
        },
        () => res.destroy(),
      );
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  relay.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return relay;
}
