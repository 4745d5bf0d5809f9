import { sleep, HsdoError } from "@hsdo/core";
import { isRetryable } from "./retryable.ts";

/**
 * Retry as a value: given how many attempts have failed so far (1, 2, ...),
 * say whether to try again and after how long.
 */
export type RetryPolicy = (attempt: number) => { retry: boolean; delayMs: number };

export interface BackoffOptions {
  /** Attempts in all, the first included. */
  maxAttempts?: number;
  baseMs?: number;
  maxMs?: number;
  /** [0, 1); injected so tests can pin the jitter. */
  random?: () => number;
}

/** Exponential backoff with jitter (half fixed, half random), capped at `maxMs`. */
export function backoffPolicy({ maxAttempts = 4, baseMs = 200, maxMs = 5_000, random = Math.random }: BackoffOptions = {}): RetryPolicy {
  return (attempt) => {
    if (attempt >= maxAttempts) return { retry: false, delayMs: 0 };
    const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
    return { retry: true, delayMs: Math.round(ceiling / 2 + (random() * ceiling) / 2) };
  };
}

/**
 * Runs `call` until it succeeds, fails with an error `retryable` rejects, the
 * policy gives up, or `signal` aborts. The last error is rethrown with the
 * number of attempts attached for the caller's message.
 */
export async function withRetry<T>(
  call: () => Promise<T>,
  policy: RetryPolicy,
  { signal, retryable = isRetryable }: { signal?: AbortSignal; retryable?: (err: unknown) => boolean } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (signal?.aborted || !retryable(err)) throw new RetryError(err, attempt);
      const { retry, delayMs } = policy(attempt);
      if (!retry) throw new RetryError(err, attempt);
      await sleep(delayMs, signal);
      if (signal?.aborted) throw new RetryError(err, attempt);
    }
  }
}

/** The last error of a retried call, and how many attempts were made. */
export class RetryError extends HsdoError {
  constructor(
    override readonly cause: unknown,
    readonly attempts: number,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "RetryError";
  }
}
