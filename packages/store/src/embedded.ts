import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { HsdoError } from "@hsdo/core";

const require = createRequire(import.meta.url);

interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}
type Dynalite = (options: DynaliteOptions) => Server;

export interface EmbeddedDynamoOptions {
  /** LevelDB directory that keeps the data across restarts (default: in memory). */
  path?: string;
  /** Default 127.0.0.1: the embedded DynamoDB takes any request, so it stays off other interfaces unless asked. */
  host?: string;
  /** Default 0: any free port (read `port` / `endpoint` after start). */
  port?: number;
}

export interface EmbeddedDynamo {
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/**
 * dynalite is an optional dependency, loaded only here: a deployment against
 * DynamoDB never needs it (`npm ci --omit=optional` leaves it out).
 */
function loadDynalite(): Dynalite {
  try {
    return require("dynalite") as Dynalite;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw err;
    throw new HsdoError(
      "dynamodb.endpoint: embedded needs the dynalite package, which is not installed (an optional dependency of @hsdo/store: run `npm install dynalite`, or point dynamodb.endpoint at DynamoDB)",
      { cause: err },
    );
  }
}

/**
 * Runs dynalite (a DynamoDB implementation on LevelDB) inside this process,
 * for the demo and single-node use (`dynamodb.endpoint: embedded`). It speaks
 * the real DynamoDB wire protocol, so the store uses it through the real SDK.
 */
export async function startEmbeddedDynamo(options: EmbeddedDynamoOptions = {}): Promise<EmbeddedDynamo> {
  const dynalite = loadDynalite();
  const host = options.host ?? "127.0.0.1";
  // Tables are ACTIVE at once: nothing here waits for a real control plane.
  const server = dynalite({ path: options.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) =>
      reject(new HsdoError(`embedded DynamoDB cannot listen on ${host}:${options.port ?? 0}: ${err.message}`, { cause: err }));
    server.once("error", failed);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://${shown}:${port}`,
    port,
    close() {
      // dynalite's close waits for its database to close, so a restart on the same path finds the LevelDB lock free.
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
