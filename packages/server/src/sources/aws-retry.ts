import { AdaptiveRetryStrategy, RETRY_MODES, StandardRetryStrategy } from "@smithy/core/retry";

/**
 * The AWS source's retries are the SDK's own: its standard (or, with
 * AWS_RETRY_MODE=adaptive, adaptive: client-side rate limiting) strategy,
 * its error classification (throttling, transient, 5xx, timeouts), its retry
 * quota, and AWS_MAX_ATTEMPTS / AWS_RETRY_MODE (or a profile's max_attempts /
 * retry_mode) as the SDK resolves them. Only the backoff is hsdo's: the
 * SDK's full-jitter exponential delay, capped at `maxDelayMs` (one interval)
 * instead of 20 s, because the SDK's wait between attempts cannot be aborted
 * and a listing must not hold a tick, or a shutdown, for long.
 */

type Strategy = StandardRetryStrategy | AdaptiveRetryStrategy;
type Token = Awaited<ReturnType<StandardRetryStrategy["acquireInitialRetryToken"]>>;
type ErrorInfo = Parameters<StandardRetryStrategy["refreshRetryTokenForRetry"]>[1];

/** The SDK's DefaultRetryBackoffStrategy (full jitter, base set per error type), with its ceiling lowered. */
export class BoundedBackoff {
  private base = 100;
  constructor(
    private readonly maxDelayMs: number,
    private readonly random: () => number = Math.random,
  ) {}
  setDelayBase(delay: number): void {
    this.base = delay;
  }
  computeNextBackoffDelay(retries: number): number {
    return Math.floor(this.random() * Math.min(this.base * 2 ** retries, this.maxDelayMs));
  }
}

/** What a client's resolved configuration says of retries (its `maxAttempts` and `retryMode` providers). */
export interface RetrySettings {
  maxAttempts: () => Promise<number>;
  retryMode: string | (() => Promise<string>);
}

/**
 * A RetryStrategyV2 for the SDK clients, built on first use from the
 * client's own resolution of maxAttempts and retryMode (environment, shared
 * config files, defaults: 3 attempts, standard), with a bounded backoff.
 */
export class SdkRetryStrategy {
  private inner: Promise<Strategy> | undefined;
  private settings: (() => RetrySettings) | undefined;

  constructor(private readonly maxDelayMs: number) {}

  /** The client whose configuration decides (set once the client exists: it is given this strategy). */
  resolveFrom(settings: () => RetrySettings): void {
    this.settings = settings;
  }

  /** The strategy in use, once the first request resolved it: "standard" or "adaptive". */
  async mode(): Promise<string> {
    return (await this.strategy()).mode;
  }

  async maxAttempts(): Promise<number> {
    const s = await this.strategy();
    return s instanceof AdaptiveRetryStrategy ? s.maxAttemptsProvider() : s.maxAttempts();
  }

  private strategy(): Promise<Strategy> {
    this.inner ??= (async () => {
      const settings = this.settings?.();
      const maxAttempts = settings ? await settings.maxAttempts() : 3;
      const mode = settings ? (typeof settings.retryMode === "function" ? await settings.retryMode() : settings.retryMode) : RETRY_MODES.STANDARD;
      const options = { maxAttempts, backoff: new BoundedBackoff(this.maxDelayMs) };
      return mode === RETRY_MODES.ADAPTIVE ? new AdaptiveRetryStrategy(maxAttempts, options) : new StandardRetryStrategy(options);
    })();
    return this.inner;
  }

  async acquireInitialRetryToken(scope: string): Promise<Token> {
    // Both strategies hand out the standard token (the adaptive one wraps the standard strategy).
    return (await (await this.strategy()).acquireInitialRetryToken(scope)) as Token;
  }

  async refreshRetryTokenForRetry(token: Token, errorInfo: ErrorInfo): Promise<Token> {
    return (await (await this.strategy()).refreshRetryTokenForRetry(token, errorInfo)) as Token;
  }

  recordSuccess(token: Token): void {
    // Resolved by the first acquireInitialRetryToken, before any success.
    void this.strategy().then((s) => s.recordSuccess(token));
  }
}
