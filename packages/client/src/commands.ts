import { RuntimeApiError, isIpLiteral, isPort, isSafeName, isWeight } from "@hsdo/core";
import type { BatchAnswer } from "./runtime-api.ts";

/** The administrative state hsdo drives a server to. */
export type ServerState = "ready" | "drain" | "maint";

/** One change to one HAProxy server, as data: planned, printed by --dry-run, sent, reported. */
export type RuntimeCommand =
  | { kind: "setAddr"; backend: string; server: string; addr: string; port: number }
  | { kind: "setWeight"; backend: string; server: string; weight: number }
  | { kind: "setState"; backend: string; server: string; state: ServerState };

const STATES: readonly ServerState[] = ["ready", "drain", "maint"];

/**
 * Renders a command as one Runtime API line. Every value is checked again
 * here, the last step before the socket: whatever is wrong upstream, no `;`,
 * space or line break can reach HAProxy inside a value.
 */
export function formatCommand(cmd: RuntimeCommand): string {
  const problems: string[] = [];
  if (!isSafeName(cmd.backend)) problems.push(`backend ${JSON.stringify(cmd.backend)} is not a name`);
  if (!isSafeName(cmd.server)) problems.push(`server ${JSON.stringify(cmd.server)} is not a name`);
  const target = `set server ${cmd.backend}/${cmd.server}`;
  let line: string;
  switch (cmd.kind) {
    case "setAddr":
      if (!isIpLiteral(cmd.addr)) problems.push(`addr ${JSON.stringify(cmd.addr)} is not an IP address`);
      if (!isPort(cmd.port)) problems.push(`port ${JSON.stringify(cmd.port)} is not a port (expected 1..65535)`);
      line = `${target} addr ${cmd.addr} port ${cmd.port}`;
      break;
    case "setWeight":
      if (!isWeight(cmd.weight)) problems.push(`weight ${JSON.stringify(cmd.weight)} is not a weight (expected 0..256)`);
      line = `${target} weight ${cmd.weight}`;
      break;
    case "setState":
      if (!STATES.includes(cmd.state)) problems.push(`state ${JSON.stringify(cmd.state)} is not one of ${STATES.join(", ")}`);
      line = `${target} state ${cmd.state}`;
      break;
  }
  if (problems.length > 0) {
    throw new RuntimeApiError(`refusing to build a Runtime API command: ${problems.join("; ")}`, {
      backend: cmd.backend,
      server: cmd.server,
    });
  }
  return line;
}

/**
 * What an answer says about its command, read by meaning:
 * - "succeeded": a wording HAProxy prints when the change took effect (or
 *   there was nothing to change);
 * - "failed": a wording HAProxy prints when it refused or only partly did it;
 * - "unrecognised": neither. Not a success either, but the caller must show
 *   the text: it is a wording (a new HAProxy version?) this code has not met.
 */
export type AnswerOutcome = "succeeded" | "failed" | "unrecognised";

export interface AnswerCheck {
  outcome: AnswerOutcome;
  /** Why, in words (names the unrecognised text). */
  reason: string;
}

// Refusals any `set server` command can get before it reaches its own
// handler, on 2.6 through 3.x (cli_find_server, cli_has_level, the handler's
// own argument checks, the CLI's dispatcher), all at level 3 or as "Unknown command".
const COMMON_FAILURES: readonly RegExp[] = [
  /^Require 'backend\/server'\.?$/,
  /^No such (backend|server)\.?$/,
  /^Proxy is disabled\.?$/,
  /^Permission denied\.?$/,
  /^Unknown command/,
  /^usage: set server /,
];

// `set server <b>/<s> weight <w>` is silent when it worked; refusals come
// from server_parse_weight_change_request (same wordings 2.6 .. 3.x, some
// without a trailing newline on 2.6).
const WEIGHT_FAILURES: readonly RegExp[] = [
  /^Require <weight> or <weight%>\.?$/,
  /^Empty weight string empty or preceded by garbage$/,
  /^Relative weight must be positive\.?$/,
  /^Absolute weight can only be between 0 and 256 inclusive\.?$/,
  /^Trailing garbage in weight string$/,
  /^Backend is using a static LB algorithm and only accepts weights '0%' and '100%'\.?$/,
];

// `set server <b>/<s> state ready|drain|maint` is silent when it worked.
const STATE_FAILURES: readonly RegExp[] = [/^'set server <srv> state' expects 'ready', 'drain' and 'maint'\.?$/];

// `set server <b>/<s> addr A port P` always prints something, at level 4
// (LOG_WARNING) whether it worked or not, so only the words tell.
//
// HAProxy 2.6 / 2.8 (srv_update_addr_port) print both parts, each either a
// change or "no need to change ...", then the updater:
//   "IP changed from 'X' to 'Y', port changed from 'a' to 'b' by 'stats socket command'"
//   "no need to change the addr, no need to change the port by 'stats socket command'"
// HAProxy 3.0 and later (server_set_inetaddr) print only what changed, with
// the updater, or "nothing changed" alone:
//   "IP changed from 'X' to 'Y' by 'stats socket command'"
//   "port changed from 'a' to 'b' by 'stats socket command'"
//   "IP changed from 'X' to 'Y', port changed from 'a' to 'b' by 'stats socket command'"
//   "nothing changed"
// Refusals (same words on every version, 3.x adds a final "." to some):
//   "Invalid addr 'A'", "Update to families other than AF_INET and AF_INET6
//   supported only through configuration file", "Update for the current
//   server address family is only supported through configuration file",
//   "problem converting port 'P' to an int", "can't change <port> to port map
//   ..." (possibly after a part that did change: only half done is a failure),
//   "set server <b>/<s> addr requires an address and optionally a port.".
const ADDR_CHANGED = /^IP changed from '[^']*' to '[^']*'$/;
const ADDR_UNCHANGED = /^no need to change the addr$/;
const PORT_CHANGED = /^port changed from '\+?(\d+)' to '\+?(\d+)'$/;
const PORT_UNCHANGED = /^no need to change the port$/;
const NOTHING_CHANGED = /^nothing changed$/;
const UPDATER = / by '[^']*'$/;
const ADDR_FAILURES: readonly RegExp[] = [
  /^Invalid addr '/,
  /^Update to families other than AF_INET and AF_INET6 supported only through configuration file/,
  /^Update for the current server address family is only supported through configuration file/,
  /^problem converting port '.*' to an int/,
  /^can't change <port> to port map/,
  /^set server <b>\/<s> addr requires an address/,
];

function unrecognised(text: string): AnswerCheck {
  return { outcome: "unrecognised", reason: `unrecognised answer: ${JSON.stringify(text)}` };
}

function failedBy(patterns: readonly RegExp[], text: string): AnswerCheck | undefined {
  if ([...COMMON_FAILURES, ...patterns].some((p) => p.test(text))) return { outcome: "failed", reason: text };
  return undefined;
}

function checkAddrAnswer(cmd: Extract<RuntimeCommand, { kind: "setAddr" }>, text: string): AnswerCheck {
  if (NOTHING_CHANGED.test(text)) return { outcome: "succeeded", reason: "already at this address and port" };
  const parts = text.replace(UPDATER, "").split(", ");
  // A refusal anywhere, even after a part that took effect, is a failure.
  if (parts.some((p) => ADDR_FAILURES.some((f) => f.test(p)))) return { outcome: "failed", reason: text };
  let addr = 0;
  let port = 0;
  for (const part of parts) {
    if (ADDR_CHANGED.test(part) || ADDR_UNCHANGED.test(part)) {
      if (port > 0) return unrecognised(text); // the address part always comes first
      addr += 1;
      continue;
    }
    const m = PORT_CHANGED.exec(part);
    if (m) {
      // The port it now has must be the one asked for.
      if (Number(m[2]) !== cmd.port) return unrecognised(text);
      port += 1;
      continue;
    }
    if (PORT_UNCHANGED.test(part)) {
      port += 1;
      continue;
    }
    return failedBy([], text) ?? unrecognised(text);
  }
  if (addr > 1 || port > 1 || addr + port === 0) return unrecognised(text);
  return { outcome: "succeeded", reason: text };
}

/**
 * Reads an answer against the command it answers. Stricter than the
 * answer's own `ok`: `set server ... weight|state` succeed silently on every
 * version, so any text there is a refusal (or unrecognised), and
 * `set server ... addr` must say it changed (or needed not change) the address
 * and port, in the words of one of the versions above.
 */
export function checkAnswer(cmd: RuntimeCommand, answer: BatchAnswer): AnswerCheck {
  const text = answer.text;
  switch (cmd.kind) {
    case "setAddr": {
      const check = checkAddrAnswer(cmd, text);
      // A success wording at a failure level is no success.
      if (check.outcome === "succeeded" && !answer.ok) return unrecognised(text);
      return check;
    }
    case "setWeight":
    case "setState":
      if (text === "") return answer.ok ? { outcome: "succeeded", reason: "" } : unrecognised(text);
      return failedBy(cmd.kind === "setWeight" ? WEIGHT_FAILURES : STATE_FAILURES, text) ?? unrecognised(text);
  }
}

/** Whether an answer means this command took effect (see checkAnswer). */
export function commandSucceeded(cmd: RuntimeCommand, answer: BatchAnswer): boolean {
  return checkAnswer(cmd, answer).outcome === "succeeded";
}
