import { test } from "node:test";
import assert from "node:assert/strict";
import { RuntimeApiError } from "@hsdo/core";
import { checkAnswer, commandSucceeded, formatCommand, type AnswerOutcome, type RuntimeCommand } from "./commands.ts";
import { chunkCommands, parseSocketAddress, readAnswer } from "./runtime-api.ts";

test("formatCommand renders the three commands", () => {
  assert.equal(
    formatCommand({ kind: "setAddr", backend: "be", server: "srv1", addr: "10.0.0.1", port: 8080 }),
    "set server be/srv1 addr 10.0.0.1 port 8080",
  );
  assert.equal(
    formatCommand({ kind: "setAddr", backend: "be", server: "srv1", addr: "2001:db8::1", port: 443 }),
    "set server be/srv1 addr 2001:db8::1 port 443",
  );
  assert.equal(formatCommand({ kind: "setWeight", backend: "be", server: "srv1", weight: 0 }), "set server be/srv1 weight 0");
  assert.equal(formatCommand({ kind: "setState", backend: "be", server: "srv1", state: "drain" }), "set server be/srv1 state drain");
});

test("formatCommand refuses any value that could inject or is out of range", () => {
  const bad: RuntimeCommand[] = [
    { kind: "setAddr", backend: "be", server: "srv1", addr: "10.0.0.1; shutdown sessions", port: 80 },
    { kind: "setAddr", backend: "be", server: "srv1", addr: "10.0.0.1\nset server be/srv2 state ready", port: 80 },
    { kind: "setAddr", backend: "be", server: "srv1", addr: "example.com", port: 80 },
    { kind: "setAddr", backend: "be", server: "srv1", addr: "10.0.0.1", port: 70000 },
    { kind: "setAddr", backend: "be", server: "srv1", addr: "10.0.0.1", port: 0 },
    { kind: "setWeight", backend: "be", server: "srv1", weight: 257 },
    { kind: "setWeight", backend: "be", server: "srv1", weight: 1.5 },
    { kind: "setWeight", backend: "be x", server: "srv1", weight: 1 },
    { kind: "setState", backend: "be", server: "srv1;x", state: "ready" },
    { kind: "setState", backend: "be", server: "srv1", state: "up" as "ready" },
  ];
  for (const cmd of bad) assert.throws(() => formatCommand(cmd), RuntimeApiError, JSON.stringify(cmd));
});

test("readAnswer: severity prefix, failure levels, unknown commands", () => {
  assert.deepEqual(readAnswer("c", ""), { command: "c", ok: true, text: "" });
  assert.deepEqual(readAnswer("c", "[3]: No such server.\n"), { command: "c", ok: false, severity: 3, text: "No such server." });
  assert.deepEqual(readAnswer("c", "[4]: IP changed from 'a' to 'b' by 'x'\n"), {
    command: "c",
    ok: true,
    severity: 4,
    text: "IP changed from 'a' to 'b' by 'x'",
  });
  assert.equal(readAnswer("c", "[6]: Unknown command, but maybe one of the following ones is a better match:\n  help").ok, false);
  assert.equal(readAnswer("c", "1\n# be_id be_name\n").text, "1\n# be_id be_name");
});

test("commandSucceeded holds each answer to the shape of a success of its command", () => {
  const addr: RuntimeCommand = { kind: "setAddr", backend: "be", server: "s1", addr: "10.0.0.1", port: 8080 };
  const weight: RuntimeCommand = { kind: "setWeight", backend: "be", server: "s1", weight: 3 };
  const ok = (cmd: RuntimeCommand, raw: string) => commandSucceeded(cmd, readAnswer("x", raw));
  // Answers as HAProxy 2.6 prints them (seen on the real one)
  assert.equal(ok(addr, "[4]: IP changed from '127.0.0.2' to '10.0.0.1', port changed from '80' to '8080' by 'stats socket command'\n"), true);
  assert.equal(ok(addr, "[4]: no need to change the addr, no need to change the port by 'stats socket command'\n"), true);
  assert.equal(ok(addr, "[4]: IP changed from '10.0.0.2' to '10.0.0.3', no need to change the port by 'stats socket command'\n"), true);
  assert.equal(ok(addr, "[4]: Invalid addr 'foo.example' by 'stats socket command'\n"), false);
  assert.equal(ok(addr, "[4]: Update for the current server address family is only supported through configuration file by 'stats socket command'\n"), false);
  assert.equal(ok(addr, "[4]: no need to change the addr, problem converting port 'abc' to an int by 'stats socket command'\n"), false);
  assert.equal(ok(addr, "[3]: No such server.\n"), false);
  assert.equal(ok(weight, ""), true);
  assert.equal(ok(weight, "[3]: Absolute weight can only be between 0 and 256 inclusive.\n"), false);
  assert.equal(ok(weight, "[3]: Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"), false);
  assert.equal(ok(weight, "[3]: Permission denied\n"), false);
});

test("checkAnswer reads set server addr answers of HAProxy 2.6/2.8 and 3.x by meaning", () => {
  const addr: RuntimeCommand = { kind: "setAddr", backend: "be", server: "s1", addr: "10.0.0.1", port: 8080 };
  const outcome = (raw: string): AnswerOutcome => checkAnswer(addr, readAnswer("x", raw)).outcome;
  const cases: [string, AnswerOutcome][] = [
    // 2.6 / 2.8: both parts, always with the updater
    ["[4]: IP changed from '127.0.0.2' to '10.0.0.1', port changed from '80' to '8080' by 'stats socket command'\n", "succeeded"],
    ["[4]: IP changed from '127.0.0.2' to '10.0.0.1', no need to change the port by 'stats socket command'\n", "succeeded"],
    ["[4]: no need to change the addr, port changed from '80' to '8080' by 'stats socket command'\n", "succeeded"],
    ["[4]: no need to change the addr, no need to change the port by 'stats socket command'\n", "succeeded"],
    // 3.x: only what changed, the updater only after a change
    ["[4]: IP changed from '127.0.0.2' to '10.0.0.1' by 'stats socket command'\n", "succeeded"],
    ["[4]: port changed from '80' to '8080' by 'stats socket command'\n", "succeeded"],
    ["[4]: IP changed from '127.0.0.2' to '10.0.0.1', port changed from '80' to '8080' by 'stats socket command'\n", "succeeded"],
    ["[4]: nothing changed\n", "succeeded"],
    // refusals, 2.6 and 3.x wordings
    ["[4]: Invalid addr 'foo.example' by 'stats socket command'\n", "failed"],
    ["[4]: Invalid addr 'foo.example'\n", "failed"],
    ["[4]: Update for the current server address family is only supported through configuration file by 'stats socket command'\n", "failed"],
    ["[4]: Update for the current server address family is only supported through configuration file.\n", "failed"],
    ["[4]: Update to families other than AF_INET and AF_INET6 supported only through configuration file\n", "failed"],
    ["[4]: no need to change the addr, problem converting port 'abc' to an int by 'stats socket command'\n", "failed"],
    ["[4]: problem converting port 'abc' to an int\n", "failed"],
    // half done (the address changed, the port did not) is not done
    [
      "[4]: IP changed from '127.0.0.2' to '10.0.0.1', can't change <port> to port map because it is incompatible with current health check port configuration (use 'port' statement from the 'server' directive). by 'stats socket command'\n",
      "failed",
    ],
    ["[3]: set server <b>/<s> addr requires an address and optionally a port.\n", "failed"],
    ["[3]: No such server.\n", "failed"],
    ["[3]: No such backend.\n", "failed"],
    ["[3]: Require 'backend/server'.\n", "failed"],
    ["[3]: Permission denied\n", "failed"],
    ["[3]: Proxy is disabled.\n", "failed"],
    ["Unknown command: 'sett', but maybe one of the following ones is a better match:\n  set server\n", "failed"],
    // neither: not a success, and flagged
    ["", "unrecognised"],
    ["[4]: IP changed to '10.0.0.1'\n", "unrecognised"],
    ["[4]: address updated\n", "unrecognised"],
    ["[4]: port changed from '80' to '9090' by 'stats socket command'\n", "unrecognised"], // not the port asked for
    ["[4]: no need to change the port, no need to change the addr by 'stats socket command'\n", "unrecognised"],
    ["[3]: IP changed from '127.0.0.2' to '10.0.0.1' by 'stats socket command'\n", "unrecognised"],
    ["[3]: something new went wrong\n", "unrecognised"],
  ];
  for (const [raw, want] of cases) assert.equal(outcome(raw), want, raw);
  const odd = checkAnswer(addr, readAnswer("x", "[4]: address updated\n"));
  assert.match(odd.reason, /^unrecognised answer: "address updated"$/);
});

test("checkAnswer: weight and state succeed silently on every version; their refusals fail; other text is unrecognised", () => {
  const weight: RuntimeCommand = { kind: "setWeight", backend: "be", server: "s1", weight: 3 };
  const state: RuntimeCommand = { kind: "setState", backend: "be", server: "s1", state: "ready" };
  const outcome = (cmd: RuntimeCommand, raw: string) => checkAnswer(cmd, readAnswer("x", raw)).outcome;
  for (const cmd of [weight, state]) {
    assert.equal(outcome(cmd, ""), "succeeded");
    assert.equal(outcome(cmd, "\n"), "succeeded");
    for (const refusal of ["No such server.", "No such backend.", "Require 'backend/server'.", "Permission denied", "Proxy is disabled."]) {
      assert.equal(outcome(cmd, `[3]: ${refusal}\n`), "failed", refusal);
    }
    assert.equal(outcome(cmd, "[4]: something else\n"), "unrecognised");
    assert.equal(outcome(cmd, "[3]: something else\n"), "unrecognised");
  }
  for (const refusal of [
    "Require <weight> or <weight%>.",
    "Empty weight string empty or preceded by garbage",
    "Relative weight must be positive.",
    "Absolute weight can only be between 0 and 256 inclusive.",
    "Trailing garbage in weight string",
    "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.",
  ]) {
    assert.equal(outcome(weight, `[3]: ${refusal}\n`), "failed", refusal);
    assert.equal(outcome(weight, `[3]: ${refusal}`), "failed", refusal); // 2.6 prints some without a newline
    assert.equal(outcome(state, `[3]: ${refusal}\n`), "unrecognised", refusal);
  }
  assert.equal(outcome(state, "[3]: 'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"), "failed");
});

test("chunkCommands keeps every chunk within the byte bound, newline included, and the order", () => {
  const lines = Array.from({ length: 50 }, (_, i) => `set server be/srv${i + 1} weight ${i}`);
  const chunks = chunkCommands(lines, 100);
  assert.ok(chunks.length > 10);
  for (const c of chunks) assert.ok(c.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0) <= 100, c.join("|"));
  assert.deepEqual(chunks.flat(), lines);
  assert.deepEqual(chunkCommands(lines, 1_000_000), [lines]);
  assert.deepEqual(chunkCommands([], 100), []);
});

test("parseSocketAddress reads HAProxy's address syntax", () => {
  assert.deepEqual(parseSocketAddress("/run/haproxy/admin.sock"), { kind: "unix", path: "/run/haproxy/admin.sock" });
  assert.deepEqual(parseSocketAddress("unix@/run/a.sock"), { kind: "unix", path: "/run/a.sock" });
  assert.deepEqual(parseSocketAddress("ipv4@127.0.0.1:9999"), { kind: "tcp", host: "127.0.0.1", port: 9999 });
  assert.deepEqual(parseSocketAddress("ipv6@[::1]:9999"), { kind: "tcp", host: "::1", port: 9999 });
  assert.deepEqual(parseSocketAddress("ipv6@::1:9999"), { kind: "tcp", host: "::1", port: 9999 });
  assert.throws(() => parseSocketAddress("ipv4@127.0.0.1"), /is not ipv4@host:port/);
  assert.throws(() => parseSocketAddress("ipv4@127.0.0.1:70000"), /is not ipv4@host:port/);
  assert.throws(() => parseSocketAddress(""), /client\.socket/);
});
