/**
 * Every error hsdo raises on purpose descends from HsdoError, so the command
 * line can tell a user's mistake (print one line, exit 2) from a bug (stack).
 * Each subclass carries the evidence the user needs to fix the problem.
 */
export class HsdoError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration value is wrong: names the key (or variable), the value and what was expected. */
export class ConfigError extends HsdoError {
  constructor(
    readonly key: string,
    readonly value: unknown,
    readonly expected: string,
    options?: ErrorOptions,
  ) {
    super(`${key}: ${formatValue(value)} ${expected}`, options);
  }
}

/**
 * Ends a loop: what it wraps needs the operator, and retrying cannot help
 * (the model is controller-runtime's TerminalError). Loops let only this
 * through; every other error of a tick is reported and the next tick tries
 * again. The command line reports the reason as it would report it alone
 * (exit 2 for a ConfigError or PreflightError).
 */
export class TerminalError extends HsdoError {
  constructor(readonly reason: HsdoError) {
    super(reason.message, { cause: reason });
  }
}

/** A check of the environment failed (missing backend, unreachable socket): exit 2 with the message. */
export class PreflightError extends HsdoError {}

/** A write was refused because a newer leader stamped the item with a higher epoch. */
export class FencedOutError extends HsdoError {
  constructor(
    readonly ourEpoch: number,
    readonly storedEpoch: number | undefined,
    readonly slot: number,
    options?: ErrorOptions,
  ) {
    super(
      `fenced out: slot ${slot} carries epoch ${storedEpoch ?? "?"}, above ours (${ourEpoch}); another server leads now`,
      options,
    );
  }
}

/** The lease was taken by someone else, or could not be renewed in time. */
export class LeaseLostError extends HsdoError {
  constructor(
    readonly owner: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`lease lost by ${owner}: ${reason}`, options);
  }
}

/** HAProxy's Runtime API refused a command, or answered something we cannot read. */
export class RuntimeApiError extends HsdoError {
  constructor(
    message: string,
    readonly details: { backend?: string; server?: string; command?: string; answer?: string } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A source (AWS, Consul, file) could not be listed; the server changes nothing this tick. */
export class SourceError extends HsdoError {
  constructor(
    readonly source: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${source}: ${message}`, options);
  }
}

export function formatValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === undefined) return "(unset)";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The message of anything thrown, for logs; never throws itself. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
