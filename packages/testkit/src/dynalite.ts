import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, CreateTableCommand, DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { freePort } from "./ports.ts";
import { startProc, type Proc } from "./proc.ts";
import { waitFor } from "./wait.ts";

const require = createRequire(import.meta.url);

/** dynalite in its own process, so tests can stop, pause and restart it for real. */
export interface DynaliteHandle {
  endpoint: string;
  port: number;
  /** LevelDB directory: the data survives stop/start. */
  path: string;
  proc: Proc;
  /** A client with dummy credentials pointed at this dynalite. */
  client(): DynamoDBClient;
  stop(): Promise<void>;
  /** Starts again on the same port and data after stop(). */
  start(): Promise<void>;
  /** stop() and remove the data directory. */
  destroy(): Promise<void>;
}

export const TEST_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

export function testDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: "us-east-1", credentials: TEST_CREDENTIALS, maxAttempts: 1 });
}

export async function startDynalite(): Promise<DynaliteHandle> {
  const port = await freePort();
  const path = mkdtempSync(join(tmpdir(), "hsdo-dynalite-"));
  const endpoint = `http://127.0.0.1:${port}`;
  const cli = require.resolve("dynalite/cli.js");
  const launch = async (): Promise<Proc> => {
    const proc = startProc("dynalite", process.execPath, [
      cli,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--path",
      path,
      "--createTableMs",
      "0",
      "--deleteTableMs",
      "0",
      "--updateTableMs",
      "0",
    ]);
    await waitFor(`dynalite on ${endpoint}`, () => {
      if (!proc.running()) throw new Error(`dynalite exited: ${proc.output()}`);
      return proc.output().includes("listening");
    });
    return proc;
  };
  const handle: DynaliteHandle = {
    endpoint,
    port,
    path,
    proc: await launch(),
    client: () => testDynamoClient(endpoint),
    async stop() {
      await handle.proc.stop("SIGTERM");
    },
    async start() {
      handle.proc = await launch();
    },
    async destroy() {
      await handle.proc.stop("SIGTERM");
      rmSync(path, { recursive: true, force: true });
    },
  };
  return handle;
}

/** Creates the hsdo table (partition key `pool` S, sort key `slot` N) and waits until it is ACTIVE. */
export async function createTestTable(client: DynamoDBClient, table: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [
        { AttributeName: "pool", AttributeType: "S" },
        { AttributeName: "slot", AttributeType: "N" },
      ],
      KeySchema: [
        { AttributeName: "pool", KeyType: "HASH" },
        { AttributeName: "slot", KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  await waitFor(`table ${table} ACTIVE`, async () => {
    const d = await client.send(new DescribeTableCommand({ TableName: table }));
    return d.Table?.TableStatus === "ACTIVE";
  });
}

/** dynalite with `table` created and a client on it, both stopped when the test ends (the usual start of a test). */
export async function dynaliteWithTable(t: { after(fn: () => unknown): void }, table: string): Promise<{ dynalite: DynaliteHandle; db: DynamoDBClient }> {
  const dynalite = await startDynalite();
  t.after(() => dynalite.destroy());
  const db = dynalite.client();
  t.after(() => db.destroy());
  await createTestTable(db, table);
  return { dynalite, db };
}
