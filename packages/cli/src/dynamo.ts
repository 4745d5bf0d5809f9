import { ConfigError, HsdoError, PreflightError, errorMessage, type Config, type Logger } from "@hsdo/core";
import { checkTable, createDynamoClient, createTable, startEmbeddedDynamo, type EmbeddedDynamo, type Observe } from "@hsdo/store";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";

export interface DynamoHandle {
  client: DynamoDBClient;
  table: string;
  /** Where requests go, for messages: the configured URL, the SDK's endpoint variable, or the region's endpoint. */
  endpoint: string;
  /** The region the SDK resolved. */
  region: string;
  embedded?: EmbeddedDynamo;
  /**
   * Another client to the same endpoint, region and credentials with other
   * request bounds (the client role's per-tick reads: one attempt, one
   * interval); closed with the handle.
   */
  derive(options: { maxAttempts: number; requestTimeoutMs: number }): DynamoDBClient;
  close(): Promise<void>;
}

/** Local endpoints need no real credentials; the SDK still wants some. */
const LOCAL_CREDENTIALS = { accessKeyId: "hsdo-local", secretAccessKey: "hsdo-local" };

/**
 * Builds the DynamoDB client as the SDK would resolve it (AWS_REGION,
 * AWS_ENDPOINT_URL_DYNAMODB, instance roles...), or starts the embedded
 * dynalite and creates the table in it.
 */
export async function openDynamo(config: Config, log: Logger, observe?: Observe): Promise<DynamoHandle> {
  // AWS_REGION (the SDK's own) wins over `region` (HSDO's AWS_DEFAULT_REGION), as documented.
  const region = process.env.AWS_REGION || config.region || undefined;
  let embedded: EmbeddedDynamo | undefined;
  let endpoint = config.dynamodb.endpoint;
  if (endpoint === "embedded") {
    try {
      embedded = await startEmbeddedDynamo({
        port: config.dynamodb.embeddedPort,
        ...(config.dynamodb.embeddedPath ? { path: config.dynamodb.embeddedPath } : {}),
      });
    } catch (err) {
      // A port another process holds is the operator's to change, like any other bad value.
      const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
      if (code === "EADDRINUSE" || code === "EACCES") {
        throw new ConfigError("dynamodb.embeddedPort", config.dynamodb.embeddedPort, `cannot be listened on (${errorMessage((err as { cause: Error }).cause)}): pick a free port, or 0 for any`);
      }
      throw err;
    }
    endpoint = embedded.endpoint;
    log.info("embedded DynamoDB started", { endpoint, path: config.dynamodb.embeddedPath || "(memory)" });
  }
  const local = embedded !== undefined;
  const base = {
    endpoint,
    region: region ?? (endpoint || process.env.AWS_ENDPOINT_URL_DYNAMODB || process.env.AWS_ENDPOINT_URL ? "us-east-1" : undefined),
    ...(local ? { credentials: LOCAL_CREDENTIALS } : {}),
  };
  // Below the lease's validity: a hung request must not outlive the term it serves.
  const client = createDynamoClient({ ...base, requestTimeoutMs: Math.max(1000, Math.min(5000, config.server.heartbeatMs * 2)) });
  const derived: DynamoDBClient[] = [];
  let resolvedRegion: string;
  try {
    resolvedRegion = await client.config.region();
  } catch (err) {
    throw new ConfigError("region", "(unset)", `is required to reach DynamoDB (set AWS_REGION or AWS_DEFAULT_REGION): ${errorMessage(err)}`);
  }
  if (local) await createTable(client, config.dynamodb.table, observe ? { observe } : {});
  return {
    client,
    table: config.dynamodb.table,
    endpoint: endpoint || process.env.AWS_ENDPOINT_URL_DYNAMODB || process.env.AWS_ENDPOINT_URL || `the ${resolvedRegion} regional endpoint`,
    region: resolvedRegion,
    ...(embedded ? { embedded } : {}),
    derive(options) {
      const c = createDynamoClient({ ...base, region: resolvedRegion, ...options });
      derived.push(c);
      return c;
    },
    async close() {
      client.destroy();
      for (const c of derived) c.destroy();
      await embedded?.close();
    },
  };
}

/** The SDK found no credentials (its CredentialsProviderError, "Could not load credentials from any providers"). */
export function isCredentialsError(err: unknown): boolean {
  return err instanceof Error && (err.name === "CredentialsProviderError" || /Could not load credentials/i.test(err.message));
}

/** What to set when the SDK has no credentials: a local endpoint needs them too, any will do. */
export const CREDENTIALS_HINT =
  "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance role; " +
  "a local endpoint (DynamoDB Local, dynalite) takes any, e.g. AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local";

/**
 * Any failure to use DynamoDB, as one line naming the endpoint and the table
 * (no stack: the cause is the SDK's message). Missing credentials need the
 * operator: a PreflightError (exit 2) saying what to set.
 */
export function dynamoFailure(handle: Pick<DynamoHandle, "endpoint" | "table">, err: unknown): HsdoError {
  if (isCredentialsError(err)) {
    return new PreflightError(`DynamoDB at ${handle.endpoint} (table ${handle.table}): ${CREDENTIALS_HINT} (${errorMessage(err)})`, { cause: err });
  }
  return new HsdoError(`DynamoDB at ${handle.endpoint} (table ${handle.table}): ${errorMessage(err)}`, { cause: err });
}

export interface TableCheckOptions {
  /**
   * true (one-shot commands): an unreachable DynamoDB is an error. false
   * (long-running server and client): a warning, and the loops keep trying,
   * so a process started during an outage fails static instead of exiting.
   */
  mustReach: boolean;
  log: Logger;
  observe?: Observe;
}

/**
 * Start-up check: the table exists, is ACTIVE and has hsdo's key schema. A
 * missing or foreign table needs the operator (PreflightError, exit 2) and is
 * never retried. A role without dynamodb:DescribeTable (IAM written before
 * hsdo checked the table) gets a warning and goes on. Returns whether
 * DynamoDB answered.
 */
export async function checkDynamoTable(handle: DynamoHandle, options: TableCheckOptions): Promise<boolean> {
  try {
    await checkTable(handle.client, handle.table, options.observe);
    return true;
  } catch (err) {
    // The endpoint matters here: a table "missing" from the wrong region or endpoint is a common mistake.
    if (err instanceof PreflightError) throw new PreflightError(`DynamoDB at ${handle.endpoint}: ${err.message}`, { cause: err });
    if (err instanceof HsdoError) throw err;
    if (err instanceof Error && err.name === "AccessDeniedException") {
      options.log.warn("cannot check the table: this role may not call dynamodb:DescribeTable (infra/iam.tf grants it); going on", {
        table: handle.table,
        error: errorMessage(err),
      });
      return true;
    }
    const failure = dynamoFailure(handle, err);
    if (options.mustReach) throw failure;
    // An instance role may still be on its way: a long-running process keeps trying, but says what is missing.
    if (isCredentialsError(err)) {
      options.log.warn(`DynamoDB cannot be called: ${CREDENTIALS_HINT}; starting anyway and retrying every tick`, { endpoint: handle.endpoint, error: errorMessage(err) });
    } else {
      options.log.warn("DynamoDB is not answering; starting anyway and retrying every tick", { endpoint: handle.endpoint, error: errorMessage(err) });
    }
    return false;
  }
}
