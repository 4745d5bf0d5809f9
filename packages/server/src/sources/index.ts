export type { TargetSource } from "./types.ts";
export { AwsSource, createAwsClients, type AwsClients, type AwsSourceOptions } from "./aws.ts";
export { classifyInstance, waitsForHook } from "./aws-classify.ts";
export { ConsulSource, createConsulClient, type ConsulSourceOptions } from "./consul.ts";
export { classifyChecks, instanceId as consulInstanceId, parseHealthAnswer, type ConsulInstance, type EntryRules } from "./consul-entries.ts";
export { StaticSource } from "./static.ts";
export { parseStaticTargets, type StaticParse } from "./static-parse.ts";
export { backoffPolicy, withRetry, RetryError, type RetryPolicy, type BackoffOptions } from "./retry.ts";
export { isThrottling, isTransient, isRetryable } from "./retryable.ts";
