/** The environment variable that names the HAProxy binary of the test bed. */
export const HAPROXY_ENV: "HSDO_TEST_HAPROXY";
/** The HAProxy binary the test bed runs: $HSDO_TEST_HAPROXY, else `haproxy` on PATH. */
export function haproxyBinary(): string;
/** `-v`'s first line, its version as `show info` prints it ("" / NaN when unreadable), or null when the binary does not run. */
export function haproxyVersion(bin?: string): { line: string; version: string; major: number; minor: number } | null;
/** Whether the test bed's HAProxy is at least major.minor. */
export function haproxyAtLeast(major: number, minor: number, bin?: string): boolean;
/** Returns HAProxy's version line; installs Debian's package when root, or exits with the command to run. */
export function ensureHaproxy(log?: (message: string) => void): string;
