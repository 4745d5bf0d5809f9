import { test } from "node:test";
import assert from "node:assert/strict";
import { RuntimeApiError } from "@hsdo/core";
import { commandSucceeded, formatCommand, type RuntimeCommand } from "./commands.ts";
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
  const addr: RuntimeCommand = { kind: "setAddr", backend: "be", server: "s1", addr: "10.0.0.1", port: 80 };
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
