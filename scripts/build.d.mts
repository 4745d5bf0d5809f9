// Types of scripts/build.mjs for the tests that import it.
export const CONF_FILES: readonly string[];
export function productionDependencies(rootPkg?: unknown): { dependencies: Record<string, string>; optionalDependencies: Record<string, string> };
export function buildPackage(opts?: { log?: (m: string) => void }): Promise<{ dir: string; pkg: Record<string, unknown> }>;
export function packPackage(opts?: { log?: (m: string) => void }): string;
