/**
 * One line per event: JSON when stderr is not a terminal (for log shippers),
 * `time LEVEL message key=value` on a terminal. Fields are plain data; never
 * pass secrets (the configuration printer hides them).
 */
import type { LogFields as Fields, Logger } from "@hsdo/core";

export type { Logger };
export type Level = "debug" | "info" | "warn" | "error";

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  debug: boolean;
  json?: boolean;
  write?: (line: string) => void;
  now?: () => number;
}

function plain(v: unknown): string {
  if (typeof v === "string") return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
}

export function createLogger(opts: LoggerOptions, base: Fields = {}): Logger {
  const json = opts.json ?? !process.stderr.isTTY;
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = opts.now ?? Date.now;
  const min = opts.debug ? RANK.debug : RANK.info;
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (RANK[level] < min) return;
    const all = { ...base, ...fields };
    for (const [k, v] of Object.entries(all)) if (v instanceof Error) all[k] = v.message;
    const time = new Date(now()).toISOString();
    if (json) write(JSON.stringify({ time, level, msg, ...all }));
    else {
      const rest = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${plain(v)}`)
        .join(" ");
      write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${rest ? ` ${rest}` : ""}`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(opts, { ...base, ...fields }),
    debugEnabled: opts.debug,
  };
}
