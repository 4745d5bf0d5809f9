import { errorMessage } from "./errors.ts";
import type { Logger } from "./log.ts";

/**
 * Runs an observer hook (a metrics recorder, a printer, a status callback):
 * one that throws is logged the same way everywhere and never breaks the
 * loop that called it, nor is taken for the loop's own failure.
 */
export function callHook(log: Logger, hook: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error("hook failed", { hook, error: errorMessage(err) });
  }
}
