import Consul from "consul";
import { ConfigError, SourceError, byLaunch, sleep, systemClock, type Clock, type ConsulSourceConfig, type Target } from "@hsdo/core";
import { ServiceWatcher } from "./consul-watch.ts";
import { backoffPolicy, type RetryPolicy } from "./retry.ts";
import type { TargetSource } from "./types.ts";

export interface ConsulSourceOptions {
  clock?: Clock;
  /** Delay between failed requests; a watcher never gives up, list() reports the failure. */
  retry?: RetryPolicy;
  /** list() throws once a service's watcher has been failing this long (until then, its last answer stands). */
  maxFailureMs?: number;
  /** How long the first list() waits for every service's first answer. */
  firstAnswerTimeoutMs?: number;
  /** Least time between two requests of one watcher. */
  minIntervalMs?: number;
}

const SOURCE = "consul";

/**
 * Targets from Consul's health API. One background watcher per service keeps
 * the latest answer through blocking queries, so list() returns at once with
 * the latest complete answer of every service instead of holding a server
 * tick for the blocking wait.
 *
 * Health: passing = ready; critical (node checks and maintenance included) =
 * leaving; warning = leaving when `passingOnly`, else ready. `passing` is not
 * asked of Consul: a critical instance must stay in the answer to be drained
 * rather than vanish.
 */
export class ConsulSource implements TargetSource {
  readonly name = SOURCE;
  private readonly consul: Consul;
  private readonly watchers: ServiceWatcher[];
  private readonly firstSeen = new Map<string, number>();
  private readonly clock: Clock;
  private readonly maxFailureMs: number;
  private readonly firstAnswerTimeoutMs: number;
  private started = false;
  private closed = false;

  constructor(
    private readonly config: ConsulSourceConfig,
    options: ConsulSourceOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxFailureMs = options.maxFailureMs ?? 15_000;
    this.firstAnswerTimeoutMs = options.firstAnswerTimeoutMs ?? 10_000;
    const services = [...new Set(config.services)];
    if (services.length === 0) throw new ConfigError("server.consul.services", config.services, "names no service (expected at least one)");
    this.consul = createConsulClient(config);
    const rules = { tags: config.tags, passingOnly: config.passingOnly, azMetaKey: config.azMetaKey };
    const retry = options.retry ?? backoffPolicy({ maxAttempts: Number.POSITIVE_INFINITY, baseMs: 250, maxMs: 10_000 });
    this.watchers = services.map(
      (service) =>
        new ServiceWatcher(this.consul, {
          service,
          rules,
          waitMs: config.waitMs,
          datacenter: config.datacenter,
          retry,
          clock: this.clock,
          minIntervalMs: options.minIntervalMs ?? 100,
        }),
    );
  }

  async list(signal?: AbortSignal): Promise<Target[]> {
    if (this.closed) throw new SourceError(SOURCE, "source is closed");
    this.start();
    await this.firstAnswers(signal);
    if (signal?.aborted) throw new SourceError(SOURCE, "list aborted");

    const now = this.clock.monotonic();
    const targets: Target[] = [];
    for (const watcher of this.watchers) {
      const state = watcher.current();
      const where = `service "${watcher.service}" at ${this.config.url}`;
      if (state.instances === undefined) {
        throw new SourceError(SOURCE, `${where}: no answer yet${state.lastError ? `: ${state.lastError}` : ` after ${this.firstAnswerTimeoutMs} ms`}`);
      }
      if (state.failingSince !== undefined && now - state.failingSince >= this.maxFailureMs) {
        throw new SourceError(SOURCE, `${where}: failing for ${Math.round(now - state.failingSince)} ms: ${state.lastError ?? "unknown error"}`);
      }
      for (const inst of state.instances) {
        const target: Target = {
          id: inst.id,
          addr: inst.addr,
          group: inst.service,
          az: inst.az,
          launchedAt: this.seen(inst.id),
          health: inst.health,
        };
        if (inst.port !== undefined) target.port = inst.port;
        targets.push(target);
      }
    }
    this.prune(new Set(targets.map((t) => t.id)));
    return targets.sort(byLaunch);
  }

  /** What the last answers had that hsdo could not use (non-IP addresses, bad AZ or port), for the logs. */
  problems(): string[] {
    return this.watchers.flatMap((w) => w.current().problems);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void Promise.all(this.watchers.map((w) => w.stop())).finally(() => this.consul.destroy());
  }

  /** Waits until every watcher has answered or failed once, the timeout passes, or `signal` aborts. */
  private async firstAnswers(signal?: AbortSignal): Promise<void> {
    const timer = new AbortController();
    const abort = () => timer.abort();
    signal?.addEventListener("abort", abort, { once: true });
    try {
      await Promise.race([Promise.all(this.watchers.map((w) => w.firstOutcome)), sleep(this.firstAnswerTimeoutMs, timer.signal)]);
    } finally {
      timer.abort();
      signal?.removeEventListener("abort", abort);
    }
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    for (const w of this.watchers) w.start();
  }

  /** launchedAt is when this server first saw the instance: Consul has no launch time. */
  private seen(id: string): number {
    let at = this.firstSeen.get(id);
    if (at === undefined) {
      at = this.clock.now();
      this.firstSeen.set(id, at);
    }
    return at;
  }

  private prune(current: Set<string>): void {
    for (const id of this.firstSeen.keys()) if (!current.has(id)) this.firstSeen.delete(id);
  }
}

/** A client for `url` (`http(s)://host:port[/prefix]`), with the ACL token as a default of every call. */
export function createConsulClient(config: Pick<ConsulSourceConfig, "url" | "token">): Consul {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(config.url) ? config.url : `http://${config.url}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError("server.consul.url", config.url, "is not a URL (expected http://host:8500)");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError("server.consul.url", config.url, "is not an http or https URL (expected http://host:8500)");
  }
  const secure = url.protocol === "https:";
  // baseUrl keeps a path prefix (Consul behind a proxy); host/port/secure are what the typings know.
  const options = {
    host: url.hostname,
    port: Number(url.port || (secure ? 443 : 80)),
    secure,
    baseUrl: `${url.origin}${url.pathname.replace(/\/+$/, "")}/v1`,
    ...(config.token ? { defaults: { token: config.token } } : {}),
  };
  return new Consul(options);
}
