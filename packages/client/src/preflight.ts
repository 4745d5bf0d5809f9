import { PreflightError, RuntimeApiError, errorMessage, type BackendConfig } from "@hsdo/core";
import { templateLine } from "./haproxy-config.ts";
import type { BatchAnswer, RuntimeSender } from "./runtime-api.ts";
import { parseServersState, type ActualServer } from "./servers-state.ts";

export interface PreflightOptions {
  backends: readonly BackendConfig[];
  /** Slots per pool: every backend needs servers `<prefix>1..<prefix><size>`. */
  size: number;
}

export interface PreflightReport {
  /** HAProxy's version, from `show info`. */
  version: string;
  /** Things that work but deserve a look (logged by the caller). */
  warnings: string[];
}

/**
 * Start-up checks: the socket answers as HAProxy at level admin, and every
 * configured backend exists with servers `<prefix>1..<prefix><size>` that
 * have an IP address. Collects every problem, then throws one PreflightError
 * that lists them with the configuration lines that fix them.
 */
export async function preflight(
  api: RuntimeSender & { readonly socket: string },
  options: PreflightOptions,
): Promise<PreflightReport> {
  const { backends, size } = options;
  const where = api.socket;
  let answers: BatchAnswer[];
  try {
    answers = await api.send(["show info", "show cli level", ...backends.map((b) => `show servers state ${b.name}`)]);
  } catch (err) {
    const message = err instanceof RuntimeApiError ? err.message : errorMessage(err);
    throw new PreflightError(`HAProxy's Runtime API (client.socket) cannot be used: ${message}`, { cause: err });
  }
  const [info, level, ...states] = answers;
  if (!info?.ok || !/^Name: HAProxy$/m.test(info.text)) {
    throw new PreflightError(
      `${where} does not answer "show info" as HAProxy does (got ${JSON.stringify((info?.text ?? "").slice(0, 120))}): ` +
        "point client.socket at HAProxy's stats socket",
    );
  }
  const version = /^Version: (.*)$/m.exec(info.text)?.[1] ?? "unknown";
  const problems: string[] = [];
  const warnings: string[] = [];
  // `show cli level` exists since HAProxy 2.0; without it, commands will tell.
  if (level?.ok && level.text !== "admin") {
    problems.push(
      `the socket's level is "${level.text}": hsdo needs \`stats socket ${where} ... level admin\` to set servers`,
    );
  }

  backends.forEach((backend, i) => {
    const answer = states[i];
    const fix = templateLine(backend, size);
    if (!answer?.ok) {
      if (answer && /Can't find backend/i.test(answer.text)) {
        problems.push(`backend ${backend.name} does not exist in HAProxy; add:\n      backend ${backend.name}\n          ${fix}`);
      } else {
        problems.push(`backend ${backend.name}: "show servers state" failed: ${answer?.text ?? "no answer"}`);
      }
      return;
    }
    let servers: ActualServer[];
    try {
      servers = parseServersState(answer.text).get(backend.name) ?? [];
    } catch (err) {
      problems.push(`backend ${backend.name}: ${errorMessage(err)}`);
      return;
    }
    const byName = new Map(servers.map((s) => [s.name, s]));
    const missing: number[] = [];
    const noAddr: number[] = [];
    const otherIds: string[] = [];
    let byIp = 0;
    for (let n = 1; n <= size; n++) {
      const server = byName.get(`${backend.prefix}${n}`);
      if (!server) missing.push(n);
      else {
        if (server.addr === undefined) noAddr.push(n);
        if (server.id !== n) otherIds.push(`${server.name} has id ${server.id}`);
        if (server.fqdn === undefined) byIp += 1;
      }
    }
    if (missing.length > 0) {
      problems.push(
        `backend ${backend.name} has ${size - missing.length} of the ${size} servers ${backend.prefix}1..${backend.prefix}${size} ` +
          `(missing ${ranges(backend.prefix, missing)}); its server-template should read:\n          ${fix}`,
      );
    }
    if (noAddr.length > 0) {
      problems.push(
        `backend ${backend.name}: ${ranges(backend.prefix, noAddr)} have no IP address, and HAProxy refuses ` +
          `\`set server ... addr\` on such servers; declare them with an IP placeholder:\n          ${fix}`,
      );
    }
    if (byIp > 0) {
      warnings.push(
        `backend ${backend.name}: ${byIp} template servers are declared by IP, and HAProxy restores such a server's weight and state ` +
          "from the server-state file at a reload but not its address, so it would come back live at the placeholder; " +
          `declare them by name:\n          ${fix}`,
      );
    }
    if (otherIds.length > 0) {
      warnings.push(
        `backend ${backend.name}: ${otherIds.slice(0, 3).join(", ")}${otherIds.length > 3 ? ", ..." : ""}; ` +
          "consistent hashing uses server ids, so keep the same backend layout on every HAProxy node " +
          "(declaring the server-template first gives server k the id k)",
      );
    }
  });

  if (problems.length > 0) {
    throw new PreflightError(
      `HAProxy at ${where} is not ready for hsdo:\n  - ${problems.join("\n  - ")}\n` +
        "(`hsdo haproxy-config` prints every line hsdo expects)",
    );
  }
  return { version, warnings };
}

/** "srv4..srv10, srv12" */
function ranges(prefix: string, numbers: readonly number[]): string {
  const parts: string[] = [];
  let start = numbers[0];
  let prev = start;
  for (const n of [...numbers.slice(1), Number.NaN]) {
    if (start === undefined || prev === undefined) break;
    if (n === prev + 1) {
      prev = n;
      continue;
    }
    parts.push(start === prev ? `${prefix}${start}` : `${prefix}${start}..${prefix}${prev}`);
    start = n;
    prev = n;
  }
  return parts.join(", ");
}
