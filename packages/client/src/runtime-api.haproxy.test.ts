import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { RuntimeApiError } from "@hsdo/core";
import { startHaproxy, templateBackend, freePort, describeServers } from "@hsdo/testkit";
import { RuntimeApi } from "./runtime-api.ts";
import { checkAnswer, type AnswerOutcome, type RuntimeCommand } from "./commands.ts";

async function cumConns(command: (line: string) => Promise<string>): Promise<number> {
  const m = /^CumConns: (\d+)$/m.exec(await command("show info"));
  assert.ok(m, "show info has CumConns");
  return Number(m[1]);
}

function listen(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer(onConnection);
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      resolve({ server, port: typeof addr === "object" && addr ? addr.port : 0 });
    });
  });
}

test("one batch, one connection, one checked answer per command; a failure is named, the others applied", async (t) => {
  const haproxy = await startHaproxy({ body: templateBackend("be", "srv", 3) });
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket, timeoutMs: 3000 });
  const before = await cumConns(haproxy.command);
  const answers = await api.send([
    "set server be/srv1 addr 10.0.0.1 port 8080",
    "set server be/srv1 weight 12",
    "set server be/nosuch state ready",
    "set server be/srv1 state ready",
    "set server be/srv2 weight 999",
    "show servers state be",
  ]);
  const after = await cumConns(haproxy.command);
  assert.equal(after - before, 2, "the batch used one connection (the other is this show info)");

  assert.deepEqual(
    answers.slice(0, 5).map((a) => [a.command, a.ok, a.severity, a.text]),
    [
      ["set server be/srv1 addr 10.0.0.1 port 8080", true, 4, "IP changed from '127.0.0.2' to '10.0.0.1', port changed from '1' to '8080' by 'stats socket command'"],
      ["set server be/srv1 weight 12", true, undefined, ""],
      ["set server be/nosuch state ready", false, 3, "No such server."],
      ["set server be/srv1 state ready", true, undefined, ""],
      ["set server be/srv2 weight 999", false, 3, "Absolute weight can only be between 0 and 256 inclusive."],
    ],
  );
  // the answer of a command run after the failing ones still reflects the applied changes
  assert.deepEqual(describeServers(answers[5]?.text ?? "", "be"), {
    srv1: "ready 10.0.0.1:8080 w12",
    srv2: "maint",
    srv3: "maint",
  });
});

test("a batch far above batchBytes is written in chunks over one connection, and all of it applies", async (t) => {
  const size = 60;
  const haproxy = await startHaproxy({ body: templateBackend("be", "srv", size) });
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket, batchBytes: 300 });
  const lines: string[] = [];
  for (let n = 1; n <= size; n++) {
    lines.push(`set server be/srv${n} addr 10.1.${Math.floor(n / 250)}.${n % 250} port ${9000 + n}`);
    lines.push(`set server be/srv${n} weight ${n}`);
    lines.push(`set server be/srv${n} state ${n % 2 === 0 ? "drain" : "ready"}`);
  }
  assert.ok(lines.join("\n").length > 20 * 300, "many chunks");
  const before = await cumConns(haproxy.command);
  const answers = await api.send(lines);
  assert.equal((await cumConns(haproxy.command)) - before, 2);
  assert.equal(answers.length, lines.length);
  assert.deepEqual(answers.filter((a) => !a.ok), []);
  assert.deepEqual(answers.map((a) => a.command), lines);
  const state = describeServers(await haproxy.command("show servers state be"), "be");
  for (let n = 1; n <= size; n++) {
    const expected = `${n % 2 === 0 ? "drain" : "ready"} 10.1.${Math.floor(n / 250)}.${n % 250}:${9000 + n} w${n}`;
    assert.equal(state[`srv${n}`], expected);
  }
});

test("ipv4@host:port sockets work like unix sockets", async (t) => {
  const port = await freePort();
  const haproxy = await startHaproxy({
    body: templateBackend("be", "srv", 1),
    global: [`stats socket ipv4@127.0.0.1:${port} level admin`],
  });
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: `ipv4@127.0.0.1:${port}` });
  const [info] = await api.send(["show info"]);
  assert.match(info?.text ?? "", /^Name: HAProxy$/m);
});

test("commands that would split into several are refused before anything is sent", async (t) => {
  const haproxy = await startHaproxy({ body: templateBackend("be", "srv", 1) });
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket });
  for (const line of ["set server be/srv1 state ready; shutdown sessions server be/srv1", "show info\nshow stat", ""]) {
    await assert.rejects(api.send(["show info", line]), /refusing to send/);
  }
  await assert.rejects(new RuntimeApi({ socket: haproxy.socket, batchBytes: 256 }).send([`show info ${"x".repeat(300)}`]), /longer than batchBytes/);
  assert.deepEqual(describeServers(await haproxy.command("show servers state be"), "be"), { srv1: "maint" });
});

test("socket problems become RuntimeApiErrors that name the socket and what to check", async (t) => {
  const haproxy = await startHaproxy({ body: templateBackend("be", "srv", 1) });
  t.after(() => haproxy.stop());

  const missing = join(haproxy.dir, "nope.sock");
  await assert.rejects(new RuntimeApi({ socket: missing }).send(["show info"]), (err: unknown) => {
    assert.ok(err instanceof RuntimeApiError);
    assert.match(err.message, new RegExp(`socket ${missing} does not exist: is HAProxy running with \`stats socket`));
    return true;
  });

  const closedPort = await freePort();
  await assert.rejects(new RuntimeApi({ socket: `ipv4@127.0.0.1:${closedPort}` }).send(["show info"]), /connection refused at ipv4@127\.0\.0\.1:\d+: HAProxy is not listening/);

  // something that accepts and never answers
  const silent = await listen(() => {});
  t.after(() => silent.server.close());
  const sockets: Socket[] = [];
  silent.server.on("connection", (s) => sockets.push(s));
  t.after(() => sockets.forEach((s) => s.destroy()));
  await assert.rejects(
    new RuntimeApi({ socket: `ipv4@127.0.0.1:${silent.port}`, timeoutMs: 300 }).send(["show info"]),
    /no answer from HAProxy's Runtime API at ipv4@127\.0\.0\.1:\d+ within 300 ms while starting the session/,
  );

  // something that answers, but not as HAProxy does
  const chatty = await listen((s) => {
    s.on("data", () => s.end("HTTP/1.1 400 Bad Request\r\n\n> "));
  });
  t.after(() => chatty.server.close());
  await assert.rejects(
    new RuntimeApi({ socket: `ipv4@127.0.0.1:${chatty.port}`, timeoutMs: 1000 }).send(["show info"]),
    /unexpected answer from ipv4@127\.0\.0\.1:\d+ to "prompt": "HTTP\/1\.1 400 Bad Request/,
  );

  // HAProxy killed: its socket file stays, nobody listens
  await haproxy.proc.stop("SIGKILL");
  await assert.rejects(new RuntimeApi({ socket: haproxy.socket }).send(["show info"]), /connection refused at .*admin\.sock/);
});

test("every answer of the running HAProxy to set server addr|weight|state is read by meaning, none unrecognised", async (t) => {
  const haproxy = await startHaproxy({
    body: [templateBackend("be", "s", 2), "backend be_na", "    server-template n 1-1 example.invalid:80 disabled init-addr none", ""].join("\n"),
  });
  t.after(() => haproxy.stop());
  const addr = (server: string, a: string, port: number): RuntimeCommand => ({ kind: "setAddr", backend: server.startsWith("n") ? "be_na" : "be", server, addr: a, port });
  const cases: [RuntimeCommand, string, AnswerOutcome][] = [
    [addr("s1", "10.0.0.1", 80), "address changed, port kept", "succeeded"],
    [addr("s1", "10.0.0.1", 80), "nothing to change", "succeeded"],
    [addr("s1", "10.0.0.1", 8080), "port changed, address kept", "succeeded"],
    [addr("s1", "10.0.0.2", 8081), "both changed", "succeeded"],
    [addr("s2", "2001:db8::1", 80), "to IPv6", "succeeded"],
    [addr("n1", "10.0.0.1", 80), "a server without an IP", "failed"],
    [{ kind: "setAddr", backend: "be", server: "nope", addr: "10.0.0.1", port: 80 }, "no such server", "failed"],
    [{ kind: "setWeight", backend: "be", server: "s1", weight: 7 }, "weight", "succeeded"],
    [{ kind: "setWeight", backend: "nope", server: "s1", weight: 7 }, "no such backend", "failed"],
    [{ kind: "setState", backend: "be", server: "s1", state: "ready" }, "state", "succeeded"],
    [{ kind: "setState", backend: "be", server: "s9", state: "drain" }, "no such server", "failed"],
  ];
  const api = new RuntimeApi({ socket: haproxy.socket });
  const lines = cases.map(([cmd]) => {
    const target = `set server ${cmd.backend}/${cmd.server}`;
    if (cmd.kind === "setAddr") return `${target} addr ${cmd.addr} port ${cmd.port}`;
    return cmd.kind === "setWeight" ? `${target} weight ${cmd.weight}` : `${target} state ${cmd.state}`;
  });
  // one by one: "nothing to change" must follow the change it repeats
  for (const [i, [cmd, what, want]] of cases.entries()) {
    const answer = await api.run(lines[i]!);
    assert.equal(checkAnswer(cmd, answer).outcome, want, `${what}: ${lines[i]} => ${JSON.stringify(answer.text)}`);
  }
  // and the server really is where the answers said
  const state = await haproxy.command("show servers state be");
  assert.match(state, / s1 10\.0\.0\.2 /);
  assert.match(state, / 8081 /);
  // plus a bad weight, refused and recognised as such on every version
  const bad = await api.run("set server be/s1 weight 300");
  assert.equal(checkAnswer({ kind: "setWeight", backend: "be", server: "s1", weight: 300 }, bad).outcome, "failed", bad.text);
});
