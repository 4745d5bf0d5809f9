import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";

export interface DynamoClientOptions {
  /** "" or undefined: the SDK resolves it (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL, or the regional endpoint). */
  endpoint?: string;
  /** "" or undefined: the SDK resolves it (AWS_REGION, profile...). */
  region?: string;
  /** Only for endpoints that need no real ones (embedded): otherwise the SDK's default chain (instance roles...). */
  credentials?: DynamoDBClientConfig["credentials"];
  maxAttempts?: number;
  /**
   * Bound of one request (default 5000 ms). Without it a request on a
   * black-holed connection hangs for ever: the lease loop would never tick
   * again and the process could not stop.
   */
  requestTimeoutMs?: number;
}

/** The one place the store builds a client; anything not given is left to the SDK's own resolution. */
export function createDynamoClient(options: DynamoClientOptions = {}): DynamoDBClient {
  const config: DynamoDBClientConfig = {};
  if (options.endpoint) config.endpoint = options.endpoint;
  if (options.region) config.region = options.region;
  if (options.credentials) config.credentials = options.credentials;
  if (options.maxAttempts !== undefined) config.maxAttempts = options.maxAttempts;
  const timeout = options.requestTimeoutMs ?? 5000;
  config.requestHandler = { requestTimeout: timeout, throwOnRequestTimeout: true, connectionTimeout: Math.min(timeout, 2000) };
  return new DynamoDBClient(config);
}
