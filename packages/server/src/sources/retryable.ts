/**
 * Pure predicates over the shape of an error, so retry decisions do not
 * depend on classes from one client library: the AWS SDK's errors carry
 * `name`/`Code` and `$metadata.httpStatusCode`, the consul package's (papi)
 * carry `statusCode` and `isTimeout`, and Node's network errors carry `code`.
 * The code lists follow the SDK's own service-error-classification.
 */

const THROTTLING_CODES = new Set([
  "BandwidthLimitExceeded",
  "EC2ThrottledException",
  "LimitExceededException",
  "PriorRequestNotComplete",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
  "ThrottledException",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "TransactionInProgressException",
]);

const TRANSIENT_CODES = new Set([
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalFailure",
  "InternalError",
  "ServiceUnavailable",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
]);

const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  statusCode?: unknown;
  isTimeout?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $retryable?: { throttling?: unknown };
}

function shape(err: unknown): ErrorShape | undefined {
  return typeof err === "object" && err !== null ? (err as ErrorShape) : undefined;
}

function codes(e: ErrorShape): unknown[] {
  return [e.name, e.code, e.Code];
}

function status(e: ErrorShape): unknown {
  return e.$metadata?.httpStatusCode ?? e.statusCode;
}

/** The service asked us to slow down. */
export function isThrottling(err: unknown): boolean {
  const e = shape(err);
  if (!e) return false;
  if (codes(e).some((c) => typeof c === "string" && THROTTLING_CODES.has(c))) return true;
  return status(e) === 429 || e.$retryable?.throttling === true;
}

/** A failure that the same request may not meet again: 5xx, timeouts, network errors (also found in `cause`). */
export function isTransient(err: unknown, depth = 0): boolean {
  const e = shape(err);
  if (!e || depth > 5) return false;
  if (codes(e).some((c) => typeof c === "string" && TRANSIENT_CODES.has(c))) return true;
  const s = status(e);
  if (typeof s === "number" && TRANSIENT_STATUS.has(s)) return true;
  if (e.isTimeout === true) return true;
  return e.cause !== undefined && isTransient(e.cause, depth + 1);
}

export function isRetryable(err: unknown): boolean {
  return isThrottling(err) || isTransient(err);
}
