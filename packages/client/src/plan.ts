import { isIP } from "node:net";
import type { BackendConfig } from "@hsdo/core";
import type { RuntimeCommand } from "./commands.ts";
import type { DesiredServer } from "./desired.ts";
import type { ActualServer } from "./servers-state.ts";

export interface Plan {
  commands: RuntimeCommand[];
  /** What cannot be planned (a server missing from HAProxy): no command is made for it. */
  problems: string[];
}

/**
 * The same address written two ways must compare equal, or the diff would
 * never settle: HAProxy prints IPv6 addresses compressed (inet_ntop), a table
 * item may not be. IPv6 goes through the URL parser, which serialises it in
 * the RFC 5952 form (IPv4-mapped included, on both sides alike).
 */
export function canonicalIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return ip.toLowerCase();
  }
}

/**
 * The commands that take HAProxy from `actual` to `desired`, only for what
 * differs: a server already as desired gets no command, so a second plan
 * after a successful apply is empty.
 *
 * Each server's commands form a sequence that the applier runs in order,
 * stopping at the first failure (apply.ts). The order keeps one rule: at
 * every step, a server that is not in maint holds either its old target's
 * complete (address, port, weight) or its new target's, never a mix
 * (docs/ARCHITECTURE.md, "The client's command order"):
 * - to maint: `state maint` only; address and weight stay as they are (they
 *   do not matter in maint, and leaving them avoids commands);
 * - a live (ready or drain) server that must change address or port goes to
 *   maint first, then gets its address, weight and state, so the new target
 *   never serves with the old one's weight, state or health result;
 * - a server in maint gets its address, then weight, then state;
 * - same address: weight, then state.
 *
 * Compared fields are the ones HAProxy keeps as set: the forced admin state
 * (FMAINT/FDRAIN), the address and port, and uweight (the weight set by
 * `set server ... weight`, which drain and maint do not change).
 *
 * Servers `<prefix><n>` with n beyond the pool's size are put in maint too:
 * a pool that shrank must not leave them serving. Other servers of the
 * backend are not hsdo's and are left alone.
 */
export function plan(
  desired: readonly DesiredServer[],
  actual: readonly ActualServer[],
  backend: Pick<BackendConfig, "name" | "prefix">,
): Plan {
  const commands: RuntimeCommand[] = [];
  const problems: string[] = [];
  const byName = new Map(actual.map((s) => [s.name, s]));
  const b = backend.name;

  for (const want of desired) {
    // "Cannot reconcile": left exactly as HAProxy has it (desiredServers reported why).
    if (want.state === "keep") continue;
    const have = byName.get(want.server);
    if (!have) {
      problems.push(
        `server ${b}/${want.server} does not exist in HAProxy: its server-template has fewer than ${want.slot} servers`,
      );
      continue;
    }
    const server = want.server;
    if (want.state === "maint") {
      if (have.state !== "maint") commands.push({ kind: "setState", backend: b, server, state: "maint" });
      continue;
    }
    if (want.addr === undefined || want.port === undefined || want.weight === undefined) {
      // desiredServers never produces this; refuse rather than guess.
      problems.push(`server ${b}/${server}: desired ${want.state} without addr, port and weight; left as it is`);
      continue;
    }
    const moves = have.addr === undefined || canonicalIp(have.addr) !== canonicalIp(want.addr) || have.port !== want.port;
    let state = have.state;
    if (moves && state !== "maint") {
      commands.push({ kind: "setState", backend: b, server, state: "maint" });
      state = "maint";
    }
    if (moves) commands.push({ kind: "setAddr", backend: b, server, addr: want.addr, port: want.port });
    if (have.uweight !== want.weight) commands.push({ kind: "setWeight", backend: b, server, weight: want.weight });
    if (state !== want.state) commands.push({ kind: "setState", backend: b, server, state: want.state });
  }

  const wanted = new Set(desired.map((d) => d.server));
  const pattern = new RegExp(`^${escapeRegExp(backend.prefix)}[1-9][0-9]*$`);
  for (const have of actual) {
    if (pattern.test(have.name) && !wanted.has(have.name) && have.state !== "maint") {
      commands.push({ kind: "setState", backend: b, server: have.name, state: "maint" });
    }
  }
  return { commands, problems };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
