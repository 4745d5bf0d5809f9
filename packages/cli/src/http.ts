import { createServer, type Server } from "node:http";
import { ConfigError } from "@hsdo/core";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

export interface Readiness {
  ready: boolean;
  reasons: string[];
  /** Worth a look, never a reason to be unready (a stale table read, what could not be reconciled). */
  warnings?: string[];
}

export interface HttpOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /** `strict`: /readyz?strict, where a stale snapshot also makes the node unready. */
  readiness: (options: { strict: boolean }) => Readiness;
  log: Logger;
}

/** /metrics, /healthz (the process answers) and /readyz (the roles say they are ready, with reasons). */
export async function startHttp(opts: HttpOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const [path, query = ""] = (req.url ?? "/").split("?");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const r = opts.readiness({ strict: new URLSearchParams(query).has("strict") });
      res.writeHead(r.ready ? 200 : 503, { "content-type": "application/json" }).end(`${JSON.stringify(r)}\n`);
    } else if (path === "/metrics") {
      opts.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": opts.metrics.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz or /readyz\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new ConfigError(
          "http.port (EXPORTER_PORT)",
          opts.port,
          `cannot be listened on at ${opts.host}: ${err.code ?? err.message} (expected a free port; a server and a client on one host need two ports, or 0 to turn HTTP off)`,
        ),
      ),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  opts.log.info("http listening", { address: typeof addr === "object" && addr ? `${addr.address}:${addr.port}` : String(addr) });
  return server;
}
