import { ConfigError, errorMessage, type Config, type Logger } from "@hsdo/core";
import { createDynamoClient, createTable, startEmbeddedDynamo, type EmbeddedDynamo, type Observe } from "@hsdo/store";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";

export interface DynamoHandle {
  client: DynamoDBClient;
  table: string;
  embedded?: EmbeddedDynamo;
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
  const region = config.region || process.env.AWS_REGION || undefined;
  let embedded: EmbeddedDynamo | undefined;
  let endpoint = config.dynamodb.endpoint;
  if (endpoint === "embedded") {
    embedded = await startEmbeddedDynamo({
      port: config.dynamodb.embeddedPort,
      ...(config.dynamodb.embeddedPath ? { path: config.dynamodb.embeddedPath } : {}),
    });
    endpoint = embedded.endpoint;
    log.info("embedded DynamoDB started", { endpoint, path: config.dynamodb.embeddedPath || "(memory)" });
  }
  const local = embedded !== undefined;
  const client = createDynamoClient({
    endpoint,
    region: region ?? (endpoint || process.env.AWS_ENDPOINT_URL_DYNAMODB || process.env.AWS_ENDPOINT_URL ? "us-east-1" : undefined),
    ...(local ? { credentials: LOCAL_CREDENTIALS } : {}),
  });
  try {
    await client.config.region();
  } catch (err) {
    throw new ConfigError("region", "(unset)", `is required to reach DynamoDB (set AWS_REGION or AWS_DEFAULT_REGION): ${errorMessage(err)}`);
  }
  if (local) await createTable(client, config.dynamodb.table, observe ? { observe } : {});
  return {
    client,
    table: config.dynamodb.table,
    ...(embedded ? { embedded } : {}),
    async close() {
      client.destroy();
      await embedded?.close();
    },
  };
}
