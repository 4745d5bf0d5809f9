import { Reconciler, type ClientTickResult } from "@hsdo/client";
import type { ServerTickResult } from "@hsdo/server";
import type { Out } from "./commands/common.ts";

/** `--dry-run`: what the server would publish, instead of publishing it. */
export function printDryRun(r: ServerTickResult, out: Out): void {
  if (r.sourceError) {
    out(`dry run: source failed (${r.sourceError}); nothing would change\n`);
    return;
  }
  if (r.error) {
    out(`dry run: could not compute the writes (${r.error})\n`);
    return;
  }
  if (!r.writes || r.writes.length === 0) {
    out(`dry run: nothing to publish (generation ${r.generation ?? 0})${r.valveHolding ? "; safety valve holding an answer" : ""}\n`);
    return;
  }
  out(`dry run: would publish generation ${(r.generation ?? 0) + 1}:\n`);
  for (const w of r.writes) out(`  ${w.slot === 0 ? "head" : `slot ${w.slot}`}: ${JSON.stringify(w.attributes)}\n`);
}

/** `--dry-run`: the Runtime API commands the client would send, instead of sending them. */
export function printClientDryRun(r: ClientTickResult, out: Out): void {
  if (!r.reconcile) return;
  const lines = Reconciler.lines(r.reconcile.planned);
  out(lines.length ? `dry run: would send ${lines.length} command(s):\n${lines.map((l) => `  ${l}`).join("\n")}\n` : "dry run: HAProxy matches, nothing to send\n");
}
