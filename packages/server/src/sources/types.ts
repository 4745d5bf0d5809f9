import type { Target } from "@hsdo/core";

/**
 * Where targets come from. `list` returns the COMPLETE current list or throws
 * SourceError: never a partial or empty list on error, because an error must
 * never look like "no instances" (the server would drain the fleet).
 */
export interface TargetSource {
  readonly name: string;
  list(signal?: AbortSignal): Promise<Target[]>;
  /** Stops background work (watchers, file watches). */
  close?(): void;
  /**
   * Lets a target waiting in an ASG lifecycle hook (Terminating:Wait) go on
   * terminating; called by the server once the target is drained.
   */
  completeLifecycle?(target: Target): Promise<void>;
  /**
   * What the last answer held that the source could not use, or only in part
   * (Consul: an address that is not an IP, a bad AZ or port), one line each;
   * the server logs each line once, when it appears.
   */
  problems?(): string[];
}
