import { errorMessage } from "@hsdo/core";
import { checkAnswer, formatCommand, type RuntimeCommand } from "./commands.ts";
import type { RuntimeSender } from "./runtime-api.ts";

export interface CommandResult {
  command: RuntimeCommand;
  /** The line sent, or that would have been; "" when the command could not be rendered. */
  line: string;
  ok: boolean;
  /** False when the command was held back (not renderable, or its server's address change failed). */
  sent: boolean;
  severity?: number;
  /** HAProxy's answer, or why the command was not sent. */
  text: string;
  /** Set when the answer was in no wording known for its command: not taken as success, and worth showing as is. */
  unrecognised?: true;
}

/**
 * Sends the commands and checks every answer against the command it answers,
 * so a failure names its backend and server. Results come back in the order
 * of `commands`.
 *
 * Address changes go first, in their own batch, and a server whose address
 * change failed gets none of its other commands: `state ready` after a failed
 * `addr` would put the server live at its old address, which may be another
 * target's. Without address changes this is a single batch.
 *
 * Throws RuntimeApiError only when the connection itself fails.
 */
export async function applyCommands(api: RuntimeSender, commands: readonly RuntimeCommand[]): Promise<CommandResult[]> {
  const results: CommandResult[] = commands.map((command) => {
    try {
      return { command, line: formatCommand(command), ok: false, sent: true, text: "" };
    } catch (err) {
      return { command, line: "", ok: false, sent: false, text: errorMessage(err) };
    }
  });
  const sendable = results.filter((r) => r.sent);
  const addrs = sendable.filter((r) => r.command.kind === "setAddr");
  const rest = sendable.filter((r) => r.command.kind !== "setAddr");

  await sendBatch(api, addrs);
  const addrFailed = new Set(addrs.filter((r) => !r.ok).map((r) => key(r.command)));
  const held = rest.filter((r) => addrFailed.has(key(r.command)));
  for (const r of held) {
    r.sent = false;
    r.text = `not sent: the address change of ${key(r.command)} failed`;
  }
  await sendBatch(
    api,
    rest.filter((r) => !addrFailed.has(key(r.command))),
  );
  return results;
}

function key(cmd: RuntimeCommand): string {
  return `${cmd.backend}/${cmd.server}`;
}

async function sendBatch(api: RuntimeSender, batch: CommandResult[]): Promise<void> {
  if (batch.length === 0) return;
  const answers = await api.send(batch.map((r) => r.line));
  batch.forEach((result, i) => {
    const answer = answers[i];
    if (!answer) {
      result.text = "no answer";
      return;
    }
    const check = checkAnswer(result.command, answer);
    result.ok = check.outcome === "succeeded";
    if (check.outcome === "unrecognised") result.unrecognised = true;
    result.text = answer.text;
    if (answer.severity !== undefined) result.severity = answer.severity;
  });
}
