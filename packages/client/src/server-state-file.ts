import { HsdoError, errorMessage } from "@hsdo/core";
import { writeFileAtomic } from "./atomic-file.ts";

/**
 * HAProxy's server-state file, kept current by the client so that a reload or
 * a restart starts every template server where the last apply left it
 * (address, port, weight, admin and operational state) instead of parked and
 * disabled until the next tick. HAProxy reads it at start-up with
 * `server-state-file <path>` (global) and `load-server-state-from-file global`
 * (defaults); its format is what `show servers state` prints. Only the
 * backends hsdo drives are in it: other backends load from their
 * configuration as if there were no file. See docs/ARCHITECTURE.md,
 * "Reloads".
 */

/** Joins several `show servers state <backend>` answers into one file: one version line, one header, every server. */
export function mergeServersStates(answers: readonly string[]): string {
  let version: string | undefined;
  let header: string | undefined;
  const lines: string[] = [];
  for (const answer of answers) {
    const [v, h, ...rest] = answer.split("\n");
    if (v === undefined || h === undefined || !h.startsWith("# ")) continue;
    if (version === undefined) {
      version = v;
      header = h;
    } else if (v !== version || h !== header) {
      continue; // one process prints one format; a mismatch is not ours to merge
    }
    lines.push(...rest.filter((l) => l.trim() !== ""));
  }
  if (version === undefined || header === undefined) return "";
  return `${[version, header, ...lines].join("\n")}\n`;
}

/** Writes the file atomically (HAProxy may read it at any moment: a reload). */
export async function writeServerStateFile(file: string, state: string): Promise<void> {
  try {
    await writeFileAtomic(file, state, 0o644);
  } catch (err) {
    throw new HsdoError(
      `cannot write HAProxy's server-state file ${file}: ${errorMessage(err)} (check client.serverStateFile; a reload would start from the configuration)`,
      { cause: err },
    );
  }
}
