/** What an hsdo process needs to reach a test's dynalite: its endpoint, dummy credentials, a region. */
export function dynamoEnv(endpoint: string): Record<string, string> {
  return { HSDO_DYNAMODB_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test", AWS_REGION: "us-east-1" };
}
