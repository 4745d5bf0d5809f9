// What this hsdo is: its version, the commit it was built from, and the Node
// it runs on (`hsdo --version`, the "hsdo started" log line, hsdo_build_info).
// `npm run build` (scripts/build.mjs) bakes version and commit in through
// esbuild's `define`; from the sources (tsx) they are read from the root
// package.json and `git rev-parse`, when there is a git checkout.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Replaced by the build with `{ version, commit }`; undeclared (typeof "undefined") when run from the sources. */
declare const HSDO_BUILD: { version: string; commit: string } | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  node: string;
}

const SOURCE_ROOT = new URL("../../../", import.meta.url);
let version: string | undefined;
let commit: string | undefined;

export function hsdoVersion(): string {
  if (typeof HSDO_BUILD !== "undefined") return HSDO_BUILD.version;
  if (version === undefined) {
    try {
      version = String((JSON.parse(readFileSync(new URL("package.json", SOURCE_ROOT), "utf8")) as { version?: unknown }).version ?? "unknown");
    } catch {
      version = "unknown";
    }
  }
  return version;
}

export function hsdoCommit(): string {
  if (typeof HSDO_BUILD !== "undefined") return HSDO_BUILD.commit;
  if (commit === undefined) {
    const git = spawnSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: fileURLToPath(SOURCE_ROOT), encoding: "utf8", timeout: 2000 });
    commit = git.status === 0 && git.stdout.trim() ? git.stdout.trim() : "unknown";
  }
  return commit;
}

export function buildInfo(): BuildInfo {
  return { version: hsdoVersion(), commit: hsdoCommit(), node: process.versions.node };
}
