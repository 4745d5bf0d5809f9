import { HsdoError, PreflightError, RuntimeApiError, errorMessage, isSafeName, isWeight, sleep, type BackendConfig, type Logger } from "@hsdo/core";
import { statSync } from "node:fs";
import { formatCommand } from "./commands.ts";
import { templateLine } from "./haproxy-config.ts";
import { STATIC_LB_REFUSAL } from "./reconcile.ts";
import { parseSocketAddress, type BatchAnswer, type RuntimeSender } from "./runtime-api.ts";
import { parseServersState, type ActualServer } from "./servers-state.ts";

export interface PreflightOptions {
  backends: readonly BackendConfig[];
  /** Slots per pool: every backend needs servers `<prefix>1..<prefix><size>`. */
  size: number;
  /**
   * Probe each backend's algorithm with a weight change on a server in forced
   * maintenance, put back in the same batch (default true). Without it (a dry
   * run that must change nothing), only `show stat`'s algo field is used.
   */
  probeWeights?: boolean;
}

/** Algorithms of `show stat`'s algo field that hash the request: static with the default map-based hashing. */
const HASH_ALGOS = new Set(["uri", "source", "hdr", "url_param", "rdp-cookie", "url-param", "hash"]);

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
    answers = await api.send(["show info", "show cli level", "show stat -1 2 -1", ...backends.map((b) => `show servers state ${b.name}`)]);
  } catch (err) {
    throw unusable(err, where);
  }
  const [info, level, stat, ...states] = answers;
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

  const probes: Probe[] = [];
  const algos = stat?.ok ? backendAlgorithms(stat.text) : new Map<string, string>();
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
    const algo = algos.get(backend.name);
    // The probe needs a server that carries no traffic: one in forced maintenance.
    let idle: ActualServer | undefined;
    for (let n = 1; n <= size && (options.probeWeights ?? true) && !idle; n++) {
      const server = byName.get(`${backend.prefix}${n}`);
      if (server?.adminFlags.includes("FMAINT")) idle = server;
    }
    if (idle && isWeight(idle.uweight) && isSafeName(backend.name)) probes.push({ backend: backend.name, server: idle, algo });
    else if (algo === "static-rr") problems.push(staticProblem(backend.name, algo, undefined));
    else if (algo !== undefined && HASH_ALGOS.has(algo)) {
      warnings.push(
        `backend ${backend.name}: balance ${algo} refuses weights unless hashing is consistent, and no server is in maintenance to check it ` +
          `harmlessly; make sure \`backend ${backend.name}\` has \`hash-type consistent\``,
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

  if (probes.length > 0) {
    let answers: BatchAnswer[];
    try {
      answers = await api.send(probes.flatMap((p) => probeLines(p)));
    } catch (err) {
      throw unusable(err, where);
    }
    probes.forEach((p, i) => {
      const [probe, restore] = [answers[2 * i], answers[2 * i + 1]];
      if (probe?.ok && probe.text === "") {
        if (!restore?.ok || restore.text !== "") {
          warnings.push(
            `backend ${p.backend}: could not put ${p.server.name}'s weight back to ${p.server.uweight} after the weight check ` +
              `(HAProxy answered ${JSON.stringify(restore?.text ?? "nothing")}); it is in maintenance, hsdo sets its weight when it uses it`,
          );
        }
      } else if (probe && STATIC_LB_REFUSAL.test(probe.text)) {
        problems.push(staticProblem(p.backend, p.algo, probe.text));
      } else {
        warnings.push(`backend ${p.backend}: could not check that it accepts weights (HAProxy answered ${JSON.stringify(probe?.text ?? "nothing")})`);
      }
    });
  }

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

/**
 * No socket file (ENOENT) or nothing listening (ECONNREFUSED): HAProxy is not
 * started yet, or restarting. Not the operator's to fix (exit 1, not 2): a
 * long-running client waits for it (preflightWhenUp).
 */
export class HaproxyAbsentError extends HsdoError {}

/** Connection errors that mean "HAProxy is not there yet", not "this is the wrong thing". */
const ABSENT_CODES = new Set(["ENOENT", "ECONNREFUSED"]);

/** What is at a unix socket path that refused a connection, when it is not a socket ("a regular file", "a directory"). */
function notASocket(socket: string): string | undefined {
  let address;
  try {
    address = parseSocketAddress(socket);
  } catch {
    return undefined;
  }
  if (address.kind !== "unix") return undefined;
  try {
    const st = statSync(address.path);
    if (st.isSocket()) return undefined;
    return st.isDirectory() ? "a directory" : st.isFile() ? "a regular file" : "not a socket";
  } catch {
    return undefined;
  }
}

function unusable(err: unknown, socket: string): HsdoError {
  const message = err instanceof RuntimeApiError ? err.message : errorMessage(err);
  const cause = err instanceof RuntimeApiError ? err.cause : err;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  // Linux refuses a unix connection to a path that is not a socket with ECONNREFUSED, as for a stale socket: tell them apart.
  const what = code === "ECONNREFUSED" ? notASocket(socket) : undefined;
  if (what !== undefined) {
    return new PreflightError(`HAProxy's Runtime API (client.socket) cannot be used: ${socket} is ${what}, not a socket: point client.socket at HAProxy's stats socket`, {
      cause: err,
    });
  }
  if (code !== undefined && ABSENT_CODES.has(code)) {
    return new HaproxyAbsentError(`HAProxy's Runtime API (client.socket) is not answering: ${message}`, { cause: err });
  }
  // A path that is not a socket, a socket hsdo may not open, an answer that is not HAProxy's: the operator's to fix.
  return new PreflightError(`HAProxy's Runtime API (client.socket) cannot be used: ${message}`, { cause: err });
}

export interface WaitOptions {
  /** Stops the wait: then resolves undefined. */
  signal: AbortSignal;
  log: Logger;
  socket: string;
  /** Between two attempts (default 1 s). */
  retryMs?: number;
  /** Between two progress lines (default 5 s). */
  logEveryMs?: number;
  now?: () => number;
}

/**
 * Runs the start-up checks until HAProxy's socket exists and answers: a
 * client started before HAProxy (boot order, a restart of HAProxy) waits,
 * with a progress line every few seconds, instead of exiting into a restart
 * loop. Any other failure (HaproxyAbsentError aside) is thrown at once.
 * Resolves undefined when `signal` aborts first.
 */
export async function preflightWhenUp<T>(check: () => Promise<T>, options: WaitOptions): Promise<T | undefined> {
  const { signal, log, socket, retryMs = 1000, logEveryMs = 5000, now = Date.now } = options;
  const started = now();
  let logged: number | undefined;
  for (;;) {
    if (signal.aborted) return undefined;
    try {
      const result = await check();
      if (logged !== undefined) log.info("HAProxy's Runtime API answers", { socket, waitedSeconds: Math.round((now() - started) / 1000) });
      return result;
    } catch (err) {
      if (!(err instanceof HaproxyAbsentError)) throw err;
      if (logged === undefined || now() - logged >= logEveryMs) {
        logged = now();
        log.warn("waiting for HAProxy's Runtime API", { socket, waitedSeconds: Math.round((now() - started) / 1000), error: err.message });
      }
    }
    await sleep(retryMs, signal);
  }
}

interface Probe {
  backend: string;
  server: ActualServer;
  /** `show stat`'s algo field, when HAProxy printed one. */
  algo: string | undefined;
}

/**
 * The Runtime API has no "algorithm and hash type" query (show stat's algo
 * says `uri` for map-based and consistent hashing alike), so the real signal
 * is HAProxy's own rule (src/server.c): a weight other than 0 and the
 * server's initial weight is refused on a static algorithm. The probe asks
 * for such a weight on a server in forced maintenance (it carries no
 * traffic) and, in the same batch, puts back the weight it had: a refused
 * probe changed nothing, an accepted one is undone at once.
 */
function probeLines(p: Probe): [string, string] {
  // Rendered like every command hsdo sends: names and weights checked again before the socket.
  const line = (weight: number) => formatCommand({ kind: "setWeight", backend: p.backend, server: p.server.name, weight });
  return [line(p.server.iweight === 1 ? 2 : 1), line(p.server.uweight)];
}

function staticProblem(backend: string, algo: string | undefined, answer: string | undefined): string {
  const said = answer ? ` (HAProxy: ${JSON.stringify(answer)})` : "";
  if (algo === "static-rr") {
    return (
      `backend ${backend}: \`balance static-rr\` is a static algorithm: HAProxy refuses every weight but 0 and 100%${said}, ` +
      `so hsdo cannot ramp weights; use a dynamic one:\n      backend ${backend}\n          balance roundrobin`
    );
  }
  const what = algo ? `\`balance ${algo === "hdr" ? "hdr(...)" : algo}\` with map-based hashing (the default hash-type)` : "its load-balancing algorithm";
  return (
    `backend ${backend}: ${what} is static: HAProxy refuses every weight but 0 and 100%${said}, so hsdo cannot ramp weights; add:\n` +
    `      backend ${backend}\n          hash-type consistent` +
    (algo ? "" : "\n      (or, if it is `balance static-rr`, use `balance roundrobin`)")
  );
}

/** `show stat -1 2 -1` (CSV, backends only): backend name -> algo, when the field exists (it does on 2.6). */
function backendAlgorithms(csv: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = csv.split("\n");
  const header = (lines[0] ?? "").replace(/^#\s*/, "").split(",");
  const px = header.indexOf("pxname");
  const sv = header.indexOf("svname");
  const algo = header.indexOf("algo");
  if (px < 0 || sv < 0 || algo < 0) return out;
  for (const line of lines.slice(1)) {
    const f = line.split(",");
    const name = f[px];
    const value = f[algo];
    if (f[sv] === "BACKEND" && name && value) out.set(name, value);
  }
  return out;
}
