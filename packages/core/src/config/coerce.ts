import { ConfigError, errorMessage } from "../errors.ts";
import { parseDuration } from "../duration.ts";
import { parseBackends } from "./backends.ts";
import type { KeyKind, KeySpec, KindValue } from "./schema.ts";

/**
 * Turns a raw value (typed from YAML, or text from the environment and
 * flags) into its key's kind, or throws a ConfigError naming the key and
 * what was expected. One coercer per kind.
 */
export function coerce(spec: KeySpec, raw: unknown, label: string, fromText: boolean): unknown {
  if (raw === null || (fromText && raw === "" && spec.optional)) {
    if (spec.optional) return null;
    if (spec.kind === "list") return [];
    if (spec.kind === "string") return "";
    fail(label, raw, spec);
  }
  return COERCERS[spec.kind](spec, raw, label, fromText);
}

/** `true`/`false` as text (environment, flags): undefined when it is neither. */
export function parseBoolText(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (TRUE.has(t)) return true;
  if (FALSE.has(t)) return false;
  return undefined;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off", ""]);

type Coercer<T> = (spec: KeySpec, raw: unknown, label: string, fromText: boolean) => T;

const COERCERS: { [K in KeyKind]: Coercer<KindValue[K]> } = {
  string: (spec, raw, label, fromText) => {
    if (typeof raw === "string") return raw.trim();
    if (typeof raw === "number" && !fromText) return String(raw);
    return fail(label, raw, spec);
  },
  int: (spec, raw, label) => {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || !inRange(spec, n)) fail(label, raw, spec);
    return n;
  },
  number: (spec, raw, label) => {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
    if (!Number.isFinite(n) || !inRange(spec, n)) fail(label, raw, spec);
    return n;
  },
  bool: (spec, raw, label) => {
    if (typeof raw === "boolean") return raw;
    const b = typeof raw === "string" ? parseBoolText(raw) : undefined;
    return b ?? fail(label, raw, spec);
  },
  duration: (spec, raw, label) => {
    const ms = parseDuration(raw);
    if (ms === undefined || !inRange(spec, ms)) fail(label, raw, spec);
    return ms;
  },
  list: (spec, raw, label) => {
    const items: unknown[] | undefined = typeof raw === "string" ? raw.split(",") : Array.isArray(raw) ? raw : undefined;
    if (!items || items.some((i) => typeof i !== "string")) fail(label, raw, spec);
    return (items as string[]).map((i) => i.trim()).filter((i) => i !== "");
  },
  enum: (spec, raw, label) => {
    if (typeof raw === "string" && spec.values?.includes(raw.trim())) return raw.trim();
    return fail(label, raw, spec);
  },
  backends: (_spec, raw, label) => {
    let value: unknown = raw;
    if (typeof raw === "string") {
      try {
        value = JSON.parse(raw);
      } catch (err) {
        throw new ConfigError(label, raw, `is not valid JSON (${errorMessage(err)}); expected a JSON list of backends`);
      }
    }
    return parseBackends(value, label);
  },
};

function inRange(spec: KeySpec, n: number): boolean {
  return (spec.min === undefined || n >= spec.min) && (spec.max === undefined || n <= spec.max);
}

function fail(label: string, value: unknown, spec: KeySpec): never {
  throw new ConfigError(label, spec.secret ? "(hidden)" : value, `is not valid (expected ${expectedFor(spec)})`);
}

function expectedFor(spec: KeySpec): string {
  const range =
    spec.min !== undefined && spec.max !== undefined
      ? ` in ${spec.min}..${spec.max}`
      : spec.min !== undefined
        ? ` >= ${spec.min}`
        : spec.max !== undefined
          ? ` <= ${spec.max}`
          : "";
  switch (spec.kind) {
    case "int":
      return `an integer${range}`;
    case "number":
      return `a number${range}`;
    case "bool":
      return "true or false";
    case "duration":
      return `a duration such as 30s, 1m, 500ms or plain seconds${spec.min ? ` (at least ${spec.min} ms)` : ""}`;
    case "list":
      return "a list (comma-separated in the environment)";
    case "enum":
      return `one of ${(spec.values ?? []).join(", ")}`;
    case "string":
      return "a string";
    case "backends":
      return "a list of backends";
  }
}
