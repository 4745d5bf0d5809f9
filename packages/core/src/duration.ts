/**
 * Durations as operators write them: `500ms`, `30s`, `1m`, `2h`, or a plain
 * number of seconds (HSDO's variables are plain seconds). Returns ms, or
 * undefined when the text is not a duration.
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(input: unknown): number | undefined {
  if (typeof input === "number") return Number.isFinite(input) && input >= 0 ? Math.round(input * 1000) : undefined;
  if (typeof input !== "string") return undefined;
  const text = input.trim();
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  const unit = UNITS[m[2] ?? "s"] ?? 1000;
  return Math.round(value * unit);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
