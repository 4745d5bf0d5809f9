/**
 * One line per event: JSON when stderr is not a terminal (for log shippers),
 * `time LEVEL message key=value` on a terminal. Fields are plain data; never
 * pass secrets (the configuration printer hides them).
 */
import type { LogFields as Fields, Logger } from "@hsdo/core";

export type { Logger };
export type Level = "debug" | "info" | "warn" | "error";

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const LEVELS: readonly Level[] = ["debug", "info", "warn", "error"];

/** The level a configuration asks for: `debug: true` (DEBUG, --debug) wins, else `logLevel` (--log-level). */
export function levelOf(config: { debug: boolean; logLevel: Level }): Level {
  return config.debug ? "debug" : config.logLevel;
}

/** The level a logger and all its children share, changed at run time by SIGHUP. */
export interface LevelControl {
  level: Level;
}

export interface LoggerOptions {
  /** A level, or a shared control whose level can change while the process runs. */
  level: Level | LevelControl;
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
  const control: LevelControl = typeof opts.level === "string" ? { level: opts.level } : opts.level;
  const shared = { ...opts, level: control };
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (RANK[level] < RANK[control.level]) return;
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
    child: (fields) => createLogger(shared, { ...base, ...fields }),
    get debugEnabled() {
      return control.level === "debug";
    },
  };
}
