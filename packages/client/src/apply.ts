import { errorMessage } from "@hsdo/core";
import { checkAnswer, formatCommand, type RuntimeCommand } from "./commands.ts";
import type { RuntimeExchange } from "./runtime-api.ts";

export interface CommandResult {
  command: RuntimeCommand;
  /** The line sent, or that would have been; "" when the command could not be rendered. */
  line: string;
  ok: boolean;
  /** False when the command was held back (not renderable, or an earlier command of its server failed). */
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
 * Each server's commands are a sequence (plan.ts gives them in their order)
 * and run in waves on one connection: wave i sends the i-th command of every
 * server whose earlier commands all succeeded. A server stops at its first
 * failure, so it is left after a prefix of its sequence, which plan.ts keeps
 * safe: never `state ready` after a failed `addr` or `weight`. Servers move
 * side by side, so an apply takes as many round trips as the longest
 * sequence (four at most), not one per command.
 *
 * Throws RuntimeApiError only when the connection itself fails.
 */
export async function applyCommands(conn: RuntimeExchange, commands: readonly RuntimeCommand[]): Promise<CommandResult[]> {
  const results: CommandResult[] = commands.map((command) => {
    try {
      return { command, line: formatCommand(command), ok: false, sent: false, text: "" };
    } catch (err) {
      return { command, line: "", ok: false, sent: false, text: `not sent: ${errorMessage(err)}` };
    }
  });
  const sequences = new Map<string, CommandResult[]>();
  for (const r of results) {
    const k = key(r.command);
    const list = sequences.get(k);
    if (list) list.push(r);
    else sequences.set(k, [r]);
  }
  const waves = Math.max(0, ...[...sequences.values()].map((steps) => steps.length));
  for (let wave = 0; wave < waves; wave++) {
    const batch: CommandResult[] = [];
    for (const steps of sequences.values()) {
      const step = steps[wave];
      if (!step) continue;
      const failed = steps.slice(0, wave).find((r) => !r.ok);
      if (failed) step.text = `not sent: "${failed.line || failed.command.kind}" failed before it`;
      // A command that could not be rendered is not sent; its text says why, and it stops its server's sequence.
      else if (step.line !== "") batch.push(step);
    }
    if (batch.length > 0) await sendBatch(conn, batch);
  }
  return results;
}

function key(cmd: RuntimeCommand): string {
  return `${cmd.backend}/${cmd.server}`;
}

async function sendBatch(conn: RuntimeExchange, batch: CommandResult[]): Promise<void> {
  const answers = await conn.send(batch.map((r) => r.line));
  batch.forEach((result, i) => {
    result.sent = true;
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
