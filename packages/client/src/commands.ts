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

// What HAProxy 2.6 prints when `set server addr ... port ...` succeeded:
// "IP changed from 'a' to 'b', port changed from 'x' to 'y' by 'stats socket command'",
// with "no need to change the addr" / "no need to change the port" in place
// of either part. Its failures ("Invalid addr", "Update for the current server
// address family is only supported through configuration file", "can't change
// <port> ...") come at level 4, like the successes, so the shape is what tells.
const ADDR_OK =
  /^(IP changed from '[^']*' to '[^']*'|no need to change the addr), (port changed from '[^']*' to '[^']*'|no need to change the port) by '[^']*'$/;

/**
 * Whether an answer means this command took effect. Stricter than the
 * answer's own `ok`: `set server ... weight|state` succeed silently, so any
 * text there is a refusal, and `set server ... addr` must say what it changed.
 */
export function commandSucceeded(cmd: RuntimeCommand, answer: BatchAnswer): boolean {
  if (!answer.ok) return false;
  switch (cmd.kind) {
    case "setAddr":
      return ADDR_OK.test(answer.text);
    case "setWeight":
    case "setState":
      return answer.text === "";
  }
}
