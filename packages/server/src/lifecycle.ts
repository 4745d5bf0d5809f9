import { errorMessage, type Clock, type Logger, type Target } from "@hsdo/core";
import type { TargetSource } from "./sources/types.ts";

export interface ReleaseOutcome {
  /** Targets whose lifecycle action was completed now. */
  done: string[];
  /** Completions that failed (retried next tick). */
  failures: number;
}

/**
 * Lets drained instances go on terminating (ASG lifecycle hook, CONTINUE):
 * once each, and only `graceMs` after they were first seen holding no slot,
 * because the clients apply `maint` on their next tick and the instance must
 * not terminate while an HAProxy node still sends it traffic.
 */
export class LifecycleReleaser {
  private readonly released = new Set<string>();
  /** When (monotonic) each waiting instance was first seen holding no slot. */
  private readonly since = new Map<string, number>();

  constructor(
    private readonly source: TargetSource,
    private readonly clock: Clock,
    private readonly graceMs: number,
    private readonly log: Logger,
  ) {}

  async release(releasable: readonly Target[], present: readonly Target[]): Promise<ReleaseOutcome> {
    const ids = new Set(present.map((t) => t.id));
    for (const id of this.released) if (!ids.has(id)) this.released.delete(id);
    for (const id of this.since.keys()) if (!ids.has(id)) this.since.delete(id);
    const outcome: ReleaseOutcome = { done: [], failures: 0 };
    const complete = this.source.completeLifecycle?.bind(this.source);
    if (!complete) return outcome;
    const now = this.clock.monotonic();
    for (const target of releasable) {
      if (this.released.has(target.id)) continue;
      const since = this.since.get(target.id) ?? now;
      this.since.set(target.id, since);
      if (now - since < this.graceMs) continue;
      try {
        await complete(target);
        this.released.add(target.id);
        outcome.done.push(target.id);
        this.log.info("lifecycle action completed: drained instance may terminate", { id: target.id, hook: target.lifecycleHook, group: target.group });
      } catch (err) {
        outcome.failures++;
        this.log.warn("could not complete lifecycle action, will retry", { id: target.id, error: errorMessage(err) });
      }
    }
    return outcome;
  }
}
