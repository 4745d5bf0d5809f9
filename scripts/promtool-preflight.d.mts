// Types of scripts/promtool-preflight.mjs for the tests and scripts that import it.
/** promtool's version line, or null when it does not run. */
export function promtoolVersion(): string | null;
/** Returns promtool's version line; exits the process when promtool cannot be had. */
export function ensurePromtool(log?: (m: string) => void): string;
