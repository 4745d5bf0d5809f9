/** Returns HAProxy's version line; installs Debian's package when root, or exits with the command to run. */
export function ensureHaproxy(log?: (message: string) => void): string;
