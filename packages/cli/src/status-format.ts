import { formatDuration, type Snapshot } from "@hsdo/core";

/** `hsdo status` as text: one row per slot, then the head. Pure, for tests and the demo. */
export function formatStatus(snapshot: Snapshot, now: number): string {
  const invalid = new Map(snapshot.invalid.map((i) => [i.slot, i]));
  const rows = snapshot.slots.map((s) => {
    const bad = invalid.get(s.slot);
    // What identifies the item's target (a leader repairs or frees the slot by it), then why it cannot be read.
    if (bad) return [String(s.slot), "INVALID", "", bad.addr ?? "", bad.name ?? "", "", "", bad.problems.join("; ")];
    const host = s.addr?.includes(":") && s.port !== undefined ? `[${s.addr}]` : s.addr;
    const addr = host ? `${host}${s.port !== undefined ? `:${s.port}` : ""}` : "";
    const since = s.state === "drain" && s.drainUntil !== undefined ? `drains ${ago(s.drainUntil - now, true)}` : s.since !== undefined ? ago(now - s.since) : "";
    const name = s.state === "free" ? (s.last !== undefined ? `(last ${s.last})` : "") : (s.name ?? "");
    return [String(s.slot), s.state, s.state === "free" ? "" : String(s.weight), addr, name, s.group ?? "", s.az ?? "", since];
  });
  const header = ["SLOT", "STATE", "WEIGHT", "ADDRESS", "NAME", "GROUP", "AZ", "SINCE"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const h = snapshot.head;
  const counts = ["ready", "drain", "free"]
    .map((st) => `${snapshot.slots.filter((s) => s.state === st && !invalid.has(s.slot)).length} ${st}`)
    .join(", ");
  return [
    line(header),
    ...rows.map(line),
    "",
    `pool ${snapshot.pool}: ${counts}${snapshot.invalid.length ? `, ${snapshot.invalid.length} invalid (kept occupied by the leader until repaired or freed)` : ""}`,
    `leader ${h.leader}, epoch ${h.epoch}, generation ${h.generation}, published ${ago(now - h.updatedAt)}`,
  ].join("\n");
}

function ago(ms: number, future = false): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const text = s < 1 ? "now" : formatDuration(s >= 120 ? Math.round(s / 60) * 60_000 : s * 1000);
  if (text === "now") return text;
  return future ? `in ${text}` : `${text} ago`;
}
