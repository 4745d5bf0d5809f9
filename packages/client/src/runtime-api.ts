import { createConnection, type NetConnectOpts, type Socket } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { RuntimeApiError, errorMessage } from "@hsdo/core";

/**
 * A connection to HAProxy's Runtime API (the `stats socket ... level admin`).
 *
 * How answers are split, and why (checked on HAProxy 2.6):
 *
 * - Non-interactive mode (`cmd1; cmd2\n`, then HAProxy closes) ends each
 *   answer with an empty line, but that is not a delimiter one can trust: an
 *   empty answer is a bare "\n", some messages come without their own newline
 *   (`set server ... weight abc` answers "Empty weight string ..." with no
 *   trailing newline, so no empty line follows it), and a line longer than
 *   tune.bufsize is cut and the rest runs as garbage ("Unknown command").
 * - Interactive mode (`prompt`) ends every answer, empty or not, with the
 *   prompt "\n> ", and reads one command per line. So we send one command per
 *   line and count prompts: answer i is the text before the (i+1)-th prompt.
 *   None of the commands hsdo sends can print "\n> " inside an answer.
 *
 * Every connection starts with `prompt` and `set severity-output number`, so
 * messages carry "[N]: " with a syslog level: 0-3 are failures. Level alone
 * is not enough (HAProxy 2.6 answers a refused `set server addr` at level 4,
 * and an unknown command at level 6), which is why commands.ts also checks
 * each answer against the shape a success has for that command.
 *
 * A batch uses one connection. It is written in chunks of at most
 * `batchBytes` bytes, and each chunk is written only once the previous one is
 * answered, so HAProxy never holds more than one chunk in its buffer
 * (tune.bufsize, 16384 by default).
 */

export interface BatchAnswer {
  /** The command line as sent. */
  command: string;
  /** False when HAProxy reported a failure (level 0-3) or did not know the command. */
  ok: boolean;
  /** Syslog level of HAProxy's message (0-7), when it printed one. */
  severity?: number;
  /** The answer without its "[N]: " prefix and trailing newlines. */
  text: string;
}

/** Anything that runs a batch of Runtime API commands: the real connection, in production and tests. */
export interface RuntimeSender {
  send(commands: readonly string[]): Promise<BatchAnswer[]>;
}

export interface RuntimeApiOptions {
  /** A unix socket path (optionally `unix@/path`), `ipv4@host:port` or `ipv6@[addr]:port`. */
  socket: string;
  /** Bound of each exchange: connecting, then each chunk's answers. Default 5000 ms. */
  timeoutMs?: number;
  /** Largest chunk written at once, in bytes. Default 16000 (below HAProxy's default tune.bufsize). */
  batchBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_BATCH_BYTES = 16000;

const PROMPT = "\n> ";
const PREAMBLE = ["prompt", "set severity-output number"] as const;

export type SocketAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** Reads HAProxy's own address syntax, as written in its `stats socket` line. */
export function parseSocketAddress(spec: string): SocketAddress {
  const tcp = /^(ipv4|ipv6)@(.+)$/.exec(spec);
  if (tcp) {
    const family = tcp[1];
    const rest = tcp[2] ?? "";
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(rest) ?? /^(.*):(\d+)$/.exec(rest);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !m[1] || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RuntimeApiError(
        `Runtime API socket "${spec}" is not ${family}@host:port (e.g. ipv4@127.0.0.1:9999, ipv6@[::1]:9999)`,
      );
    }
    return { kind: "tcp", host: m[1], port };
  }
  const path = spec.startsWith("unix@") ? spec.slice("unix@".length) : spec;
  if (path === "") throw new RuntimeApiError("Runtime API socket is empty: set client.socket to HAProxy's stats socket path");
  return { kind: "unix", path };
}

/** Splits command lines into chunks of at most `maxBytes` bytes, each line counted with its newline. */
export function chunkCommands(commands: readonly string[], maxBytes: number): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const command of commands) {
    const bytes = Buffer.byteLength(command) + 1;
    if (current.length > 0 && size + bytes > maxBytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(command);
    size += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Reads one raw answer (the text before a prompt) into a BatchAnswer. */
export function readAnswer(command: string, raw: string): BatchAnswer {
  let text = raw.replace(/\n+$/, "");
  let severity: number | undefined;
  const m = /^\[(\d)\]: ?/.exec(text);
  if (m) {
    severity = Number(m[1]);
    text = text.slice(m[0].length);
  }
  const failed = (severity !== undefined && severity <= 3) || /^Unknown command/.test(text);
  const answer: BatchAnswer = { command, ok: !failed, text };
  if (severity !== undefined) answer.severity = severity;
  return answer;
}

export class RuntimeApi implements RuntimeSender {
  readonly socket: string;
  readonly timeoutMs: number;
  readonly batchBytes: number;
  private readonly address: SocketAddress;

  constructor(options: RuntimeApiOptions) {
    this.socket = options.socket;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.address = parseSocketAddress(options.socket);
    if (!(this.batchBytes >= 256)) {
      throw new RuntimeApiError(`batchBytes ${this.batchBytes} is too small for a Runtime API command (expected >= 256)`);
    }
  }

  /** Sends one command and returns its answer (checked like any other). */
  async run(command: string): Promise<BatchAnswer> {
    const [answer] = await this.send([command]);
    if (!answer) throw new RuntimeApiError(`no answer to "${command}" from ${this.socket}`, { command });
    return answer;
  }

  /**
   * Sends every command over one connection and returns one answer per
   * command, in order. A refused command is an answer with ok=false; only a
   * connection that cannot be used (missing socket, refused, timeout,
   * unreadable answer) throws a RuntimeApiError.
   */
  async send(commands: readonly string[]): Promise<BatchAnswer[]> {
    for (const command of commands) this.checkLine(command);
    if (commands.length === 0) return [];
    return this.exchange(chunkCommands(commands, this.batchBytes));
  }

  private checkLine(command: string): void {
    // One line is one command: a `;` or a line break would make HAProxy run
    // more commands than we count answers for.
    if (command.trim() === "" || /[;\r\n\0]/.test(command)) {
      throw new RuntimeApiError(`refusing to send ${JSON.stringify(command)}: a command is one line without ";"`, {
        command,
      });
    }
    if (Buffer.byteLength(command) + 1 > this.batchBytes) {
      throw new RuntimeApiError(`command longer than batchBytes (${this.batchBytes}): ${command.slice(0, 80)}...`, {
        command,
      });
    }
  }

  private exchange(chunks: string[][]): Promise<BatchAnswer[]> {
    const where = this.socket;
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const connectOpts: NetConnectOpts =
      this.address.kind === "unix" ? { path: this.address.path } : { host: this.address.host, port: this.address.port };

    return new Promise<BatchAnswer[]>((resolve, reject) => {
      const answers: BatchAnswer[] = [];
      const decoder = new StringDecoder("utf8");
      let buffer = "";
      let preambleLeft: number = PREAMBLE.length;
      let chunkIndex = -1;
      let pending: string[] = [];
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let phase = "connecting";

      const conn: Socket = createConnection(connectOpts);

      const finish = (err?: RuntimeApiError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          conn.destroy();
          reject(err);
        } else {
          conn.end("quit\n");
          resolve(answers);
        }
      };
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          finish(
            new RuntimeApiError(
              `no answer from HAProxy's Runtime API at ${where} within ${this.timeoutMs} ms while ${phase} ` +
                `(${answers.length} of ${total} answers received): check that it is HAProxy's stats socket and HAProxy is not stuck`,
            ),
          );
        }, this.timeoutMs);
      };
      const writeNext = () => {
        chunkIndex += 1;
        const chunk = chunks[chunkIndex];
        if (!chunk) return finish();
        pending = [...chunk];
        phase = `waiting for the answers of chunk ${chunkIndex + 1} of ${chunks.length}`;
        arm();
        conn.write(chunk.map((c) => `${c}\n`).join(""));
      };
      const onAnswer = (raw: string): RuntimeApiError | undefined => {
        if (preambleLeft > 0) {
          const step = PREAMBLE[PREAMBLE.length - preambleLeft];
          preambleLeft -= 1;
          if (raw.trim() !== "") {
            return new RuntimeApiError(
              `unexpected answer from ${where} to "${step}": ${JSON.stringify(raw.slice(0, 200))}; ` +
                "is this HAProxy's stats socket (HAProxy 2.x or later)?",
              { command: step, answer: raw },
            );
          }
          if (preambleLeft === 0) writeNext();
          return undefined;
        }
        const command = pending.shift();
        if (command === undefined) {
          return new RuntimeApiError(`unexpected extra answer from ${where}: ${JSON.stringify(raw.slice(0, 200))}`, {
            answer: raw,
          });
        }
        answers.push(readAnswer(command, raw));
        if (pending.length === 0) writeNext();
        return undefined;
      };

      arm();
      conn.setNoDelay(true);
      conn.on("connect", () => {
        phase = "starting the session";
        arm();
        conn.write(PREAMBLE.map((c) => `${c}\n`).join(""));
      });
      conn.on("data", (data: Buffer) => {
        buffer += decoder.write(data);
        for (;;) {
          if (settled) return;
          const at = buffer.indexOf(PROMPT);
          if (at < 0) break;
          // The very first prompt follows the empty answer to `prompt` itself.
          const raw = buffer.slice(0, at);
          buffer = buffer.slice(at + PROMPT.length);
          const err = onAnswer(raw);
          if (err) return finish(err);
        }
        if (buffer.length > 16 * 1024 * 1024) {
          finish(new RuntimeApiError(`answer from ${where} exceeds 16 MiB without a prompt: not a Runtime API answer`));
        }
      });
      conn.on("error", (err: NodeJS.ErrnoException) => finish(connectionError(where, err)));
      conn.on("close", () => {
        if (settled) return;
        const tail = buffer.trim() ? `; last output: ${JSON.stringify(buffer.slice(0, 200))}` : "";
        finish(
          new RuntimeApiError(
            `HAProxy closed the Runtime API connection at ${where} after ${answers.length} of ${total} answers${tail}: ` +
              "check `stats timeout` and HAProxy's log",
          ),
        );
      });
    });
  }
}

/** Turns a socket error into a message that says what to check. */
function connectionError(where: string, err: NodeJS.ErrnoException): RuntimeApiError {
  const hint: Record<string, string> = {
    ENOENT: `socket ${where} does not exist: is HAProxy running with \`stats socket ${where} level admin\` in its global section?`,
    ECONNREFUSED: `connection refused at ${where}: HAProxy is not listening there (stopped, restarting, or a stale socket file)`,
    EACCES: `permission denied on ${where}: run hsdo as a user allowed to open it (see \`stats socket ... mode/user/group\`)`,
    ENOTSOCK: `${where} is not a socket: point client.socket at HAProxy's stats socket`,
    ECONNRESET: `HAProxy reset the Runtime API connection at ${where}: check HAProxy's log`,
    EPIPE: `HAProxy closed the Runtime API connection at ${where} while we were writing: check HAProxy's log`,
  };
  const message = (err.code && hint[err.code]) ?? `cannot use HAProxy's Runtime API at ${where}: ${errorMessage(err)}`;
  return new RuntimeApiError(message, {}, { cause: err });
}
