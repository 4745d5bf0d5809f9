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

/** One open Runtime API connection: each `send` goes on it, in order, after the previous one was answered. */
export interface RuntimeExchange {
  send(commands: readonly string[]): Promise<BatchAnswer[]>;
}

/**
 * Anything that runs Runtime API commands: `send` is one batch on its own
 * connection; `session` runs several dependent batches on one connection, so
 * what a later batch does can depend on earlier answers while no reload can
 * fall between them onto another HAProxy process unnoticed.
 */
export interface RuntimeSender extends RuntimeExchange {
  session<T>(fn: (conn: RuntimeExchange) => Promise<T>): Promise<T>;
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
    return this.session((conn) => conn.send(commands));
  }

  /** Opens one connection, runs `fn` on it, and closes it whatever `fn` does. */
  async session<T>(fn: (conn: RuntimeExchange) => Promise<T>): Promise<T> {
    const conn = await RuntimeConnection.open(this.socket, this.address, this.timeoutMs);
    const exchange: RuntimeExchange = {
      send: (commands) => {
        for (const command of commands) this.checkLine(command);
        return commands.length === 0 ? Promise.resolve([]) : conn.send(chunkCommands(commands, this.batchBytes));
      },
    };
    try {
      return await fn(exchange);
    } finally {
      conn.close();
    }
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
}

/**
 * One interactive session: `prompt` and `set severity-output number` first,
 * then chunks of commands, each written once the previous one is answered.
 * Answers are split on the prompt (see the top of this file). Any failure of
 * the connection fails the pending exchange and every later one.
 */
class RuntimeConnection {
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";
  private broken: RuntimeApiError | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  /** The raw answers still expected by the exchange in progress, and what to do with them. */
  private waiting: { left: number; raw: string[]; done: (err?: RuntimeApiError) => void; phase: string } | undefined;

  private constructor(
    private readonly where: string,
    private readonly conn: Socket,
    private readonly timeoutMs: number,
  ) {
    conn.setNoDelay(true);
    conn.on("data", (data: Buffer) => this.onData(data));
    conn.on("error", (err: NodeJS.ErrnoException) => this.fail(connectionError(where, err)));
    conn.on("close", () => {
      if (this.closed) return;
      const tail = this.buffer.trim() ? `; last output: ${JSON.stringify(this.buffer.slice(0, 200))}` : "";
      this.fail(
        new RuntimeApiError(
          `HAProxy closed the Runtime API connection at ${where} ${this.waiting ? `while ${this.waiting.phase}` : "between two exchanges"}${tail}: ` +
            "check `stats timeout` and HAProxy's log",
        ),
      );
    });
  }

  static async open(where: string, address: SocketAddress, timeoutMs: number): Promise<RuntimeConnection> {
    const opts: NetConnectOpts = address.kind === "unix" ? { path: address.path } : { host: address.host, port: address.port };
    const conn = new RuntimeConnection(where, createConnection(opts), timeoutMs);
    // One at a time, so a peer that is not HAProxy is named by its first answer.
    for (const step of PREAMBLE) {
      const [raw = ""] = await conn.exchange(`${step}\n`, 1, "starting the session");
      if (raw.trim() !== "") {
        const err = new RuntimeApiError(
          `unexpected answer from ${where} to "${step}": ${JSON.stringify(raw.slice(0, 200))}; ` +
            "is this HAProxy's stats socket (HAProxy 2.x or later)?",
          { command: step, answer: raw },
        );
        conn.fail(err); // not HAProxy: drop the connection, say nothing more to it
        throw err;
      }
    }
    return conn;
  }

  async send(chunks: readonly string[][]): Promise<BatchAnswer[]> {
    const answers: BatchAnswer[] = [];
    const total = chunks.reduce((n, c) => n + c.length, 0);
    for (const [i, chunk] of chunks.entries()) {
      const phase = `waiting for the answers of chunk ${i + 1} of ${chunks.length} (${answers.length} of ${total} answers received)`;
      const raw = await this.exchange(chunk.map((c) => `${c}\n`).join(""), chunk.length, phase);
      chunk.forEach((command, j) => answers.push(readAnswer(command, raw[j] ?? "")));
    }
    return answers;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.broken || !this.conn.writable) this.conn.destroy();
    else this.conn.end("quit\n");
  }

  private exchange(text: string, count: number, phase: string): Promise<string[]> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new RuntimeApiError(`Runtime API connection to ${this.where} already closed`));
    return new Promise<string[]>((resolve, reject) => {
      const raw: string[] = [];
      this.waiting = {
        left: count,
        raw,
        phase,
        done: (err) => {
          clearTimeout(this.timer);
          this.waiting = undefined;
          if (err) reject(err);
          else resolve(raw);
        },
      };
      this.timer = setTimeout(
        () =>
          this.fail(
            new RuntimeApiError(
              `no answer from HAProxy's Runtime API at ${this.where} within ${this.timeoutMs} ms while ${phase}: ` +
                "check that it is HAProxy's stats socket and HAProxy is not stuck",
            ),
          ),
        this.timeoutMs,
      );
      // Written only now, so HAProxy never holds more than one chunk in its buffer (tune.bufsize).
      if (!this.conn.writable && !this.conn.connecting) {
        this.fail(new RuntimeApiError(`HAProxy closed the Runtime API connection at ${this.where} while ${phase}: check \`stats timeout\` and HAProxy's log`));
      } else if (text) this.conn.write(text);
    });
  }

  private onData(data: Buffer): void {
    this.buffer += this.decoder.write(data);
    for (;;) {
      const at = this.buffer.indexOf(PROMPT);
      if (at < 0) break;
      const raw = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + PROMPT.length);
      const w = this.waiting;
      if (!w) return this.fail(new RuntimeApiError(`unexpected extra answer from ${this.where}: ${JSON.stringify(raw.slice(0, 200))}`, { answer: raw }));
      w.raw.push(raw);
      w.left -= 1;
      if (w.left === 0) w.done();
    }
    if (this.buffer.length > 16 * 1024 * 1024) {
      this.fail(new RuntimeApiError(`answer from ${this.where} exceeds 16 MiB without a prompt: not a Runtime API answer`));
    }
  }

  fail(err: RuntimeApiError): void {
    if (this.broken) return;
    this.broken = err;
    clearTimeout(this.timer);
    this.conn.destroy();
    this.waiting?.done(err);
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
