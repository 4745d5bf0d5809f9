import { EventEmitter } from "node:events";
import type Consul from "consul";
import { errorMessage, sleep, type Clock } from "@hsdo/core";
import { parseHealthAnswer, type ConsulInstance, type EntryRules } from "./consul-entries.ts";
import type { RetryPolicy } from "./retry.ts";

/**
 * Keeps the latest answer of `/v1/health/service/<name>` with blocking
 * queries, in consul-template's View habits: remember the last index; the
 * same index means no change; an index that went backwards resets to 0; a
 * new index with an equal payload changes nothing; any successful answer
 * resets the retry count; requests are at least `minIntervalMs` apart.
 * After a failure the next query does not block, so that recovery shows at
 * once instead of after a whole wait.
 */
export interface WatchOptions {
  service: string;
  rules: EntryRules;
  waitMs: number;
  datacenter: string;
  retry: RetryPolicy;
  clock: Clock;
  minIntervalMs: number;
}

export interface WatchSnapshot {
  instances: ConsulInstance[] | undefined;
  problems: string[];
  /** Bumped when the payload changes, not when only the index does. */
  version: number;
  lastError: string | undefined;
  /** Monotonic time of the first failure since the last success. */
  failingSince: number | undefined;
}

/** The consul package's typings lack the options its JS takes for blocking queries (index, wait, ctx, timeout). */
type HealthServiceCall = (options: Record<string, unknown>) => Promise<unknown>;

export class ServiceWatcher {
  private index = 0;
  private attempt = 0;
  private snapshot: WatchSnapshot = { instances: undefined, problems: [], version: 0, lastError: undefined, failingSince: undefined };
  private payload = "";
  private readonly stopper = new AbortController();
  /** papi cancels an in-flight request when its ctx emits "cancel"; `includeResponse` makes the call answer [res, body]. */
  private readonly ctx = Object.assign(new EventEmitter(), { includeResponse: true });
  private readonly call: HealthServiceCall;
  private running: Promise<void> | undefined;
  private resolveFirst!: () => void;
  /** Settles at the first answer or the first failure, whichever comes first. */
  readonly firstOutcome = new Promise<void>((resolve) => (this.resolveFirst = resolve));

  constructor(
    consul: Consul,
    private readonly options: WatchOptions,
  ) {
    this.call = consul.health.service.bind(consul.health) as unknown as HealthServiceCall;
  }

  get service(): string {
    return this.options.service;
  }

  current(): WatchSnapshot {
    return this.snapshot;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.ctx.emit("cancel");
    await this.running;
  }

  private async loop(): Promise<void> {
    const { clock, minIntervalMs } = this.options;
    while (!this.stopper.signal.aborted) {
      const started = clock.monotonic();
      const startedReal = performance.now();
      try {
        await this.fetchOnce();
        this.attempt = 0;
        this.snapshot = { ...this.snapshot, lastError: undefined, failingSince: undefined };
      } catch (err) {
        if (this.stopper.signal.aborted) break;
        this.attempt += 1;
        this.snapshot = {
          ...this.snapshot,
          lastError: describeError(err),
          failingSince: this.snapshot.failingSince ?? started,
        };
        this.resolveFirst();
        await sleep(this.options.retry(this.attempt).delayMs, this.stopper.signal);
        continue;
      }
      this.resolveFirst();
      // Real time, not the injected clock: this only paces requests to the agent.
      const elapsed = performance.now() - startedReal;
      if (elapsed < minIntervalMs) await sleep(minIntervalMs - elapsed, this.stopper.signal);
    }
  }

  private async fetchOnce(): Promise<void> {
    const { service, waitMs, datacenter, rules } = this.options;
    const request: Record<string, unknown> = {
      service,
      ctx: this.ctx,
      // Consul holds a blocking query up to wait + wait/16 (jitter); beyond that, something is wrong.
      timeout: waitMs + Math.ceil(waitMs / 16) + 5_000,
    };
    // After a failure, one quick non-blocking query shows at once whether the agent answers again.
    if (this.index > 0 && this.attempt === 0) {
      request.index = String(this.index);
      request.wait = `${waitMs}ms`;
    }
    if (datacenter) request.dc = datacenter;
    // Consul filters on one tag on every version; all tags are checked again on our side.
    if (rules.tags[0] !== undefined) request.tag = rules.tags[0];
    const result = await this.call(request);
    const [res, body] = Array.isArray(result) ? result : [undefined, undefined];
    const header = (res as { headers?: Record<string, unknown> } | undefined)?.headers?.["x-consul-index"];
    const newIndex = typeof header === "string" && /^\d+$/.test(header) ? Number(header) : Number.NaN;
    if (!Number.isSafeInteger(newIndex)) throw new Error(`answer without a valid X-Consul-Index header (got ${JSON.stringify(header)})`);

    // An index of 0 is a Consul bug that would make every query return at once: block on 1 instead.
    const index = Math.max(newIndex, 1);
    if (index < this.index) {
      // The index went backwards (snapshot restore, new cluster): start over with a non-blocking query.
      this.index = 0;
      return;
    }
    if (this.index > 0 && index === this.index) return;
    const parsed = parseHealthAnswer(body, service, rules);
    if (!parsed.ok) throw new Error(parsed.error);
    this.index = index;
    const payload = JSON.stringify([parsed.instances, parsed.problems]);
    if (payload === this.payload && this.snapshot.instances !== undefined) return;
    this.payload = payload;
    this.snapshot = { ...this.snapshot, instances: parsed.instances, problems: parsed.problems, version: this.snapshot.version + 1 };
  }
}

function describeError(err: unknown): string {
  const status = typeof err === "object" && err !== null ? (err as { statusCode?: unknown }).statusCode : undefined;
  return typeof status === "number" ? `${errorMessage(err)} (HTTP ${status})` : errorMessage(err);
}
