import { test } from "node:test";
import assert from "node:assert/strict";
import { formatCommand } from "./commands.ts";
import type { DesiredServer } from "./desired.ts";
import { canonicalIp, plan } from "./plan.ts";
import { forcedState, type ActualServer } from "./servers-state.ts";

const backend = { name: "be", prefix: "srv" };

function actual(name: string, adminState: number, addr: string | undefined, port: number, uweight: number, id = 1): ActualServer {
  const server: ActualServer = {
    backend: "be",
    backendId: 2,
    name,
    id,
    port,
    opState: adminState & 1 ? 0 : 2,
    adminState,
    adminFlags: [],
    state: forcedState(adminState),
    inMaintenance: (adminState & 1) !== 0,
    uweight,
    iweight: 1,
  };
  if (addr !== undefined) server.addr = addr;
  return server;
}

// HAProxy 2.6 admin states as seen on the real one: fresh template 5, ready 4, drain 12, maint again 5.
const ACTUAL = {
  fresh: actual("srv1", 5, "127.0.0.2", 80, 1),
  ready: actual("srv1", 4, "10.0.0.1", 8080, 10),
  drain: actual("srv1", 12, "10.0.0.1", 8080, 10),
  readyElsewhere: actual("srv1", 4, "10.0.0.9", 8080, 3),
  maintOld: actual("srv1", 5, "10.0.0.1", 8080, 10),
};
const DESIRED: Record<string, DesiredServer> = {
  maint: { server: "srv1", slot: 1, state: "maint" },
  ready: { server: "srv1", slot: 1, state: "ready", addr: "10.0.0.1", port: 8080, weight: 10 },
  drain: { server: "srv1", slot: 1, state: "drain", addr: "10.0.0.1", port: 8080, weight: 10 },
};

const A = "set server be/srv1 addr 10.0.0.1 port 8080";
const W = "set server be/srv1 weight 10";
const S = (s: string) => `set server be/srv1 state ${s}`;

const TABLE: [keyof typeof ACTUAL, keyof typeof DESIRED, string[]][] = [
  ["fresh", "maint", []],
  ["fresh", "ready", [A, W, S("ready")]],
  ["fresh", "drain", [A, W, S("drain")]],
  ["ready", "maint", [S("maint")]],
  ["ready", "ready", []],
  ["ready", "drain", [S("drain")]],
  ["drain", "maint", [S("maint")]],
  ["drain", "ready", [S("ready")]],
  ["drain", "drain", []],
  ["readyElsewhere", "maint", [S("maint")]],
  ["readyElsewhere", "ready", [A, W]],
  ["readyElsewhere", "drain", [A, W, S("drain")]],
  ["maintOld", "maint", []],
  ["maintOld", "ready", [S("ready")]],
  ["maintOld", "drain", [S("drain")]],
];

test("transition table: only the differences, address then weight then state; to maint only the state", () => {
  for (const [from, to, expected] of TABLE) {
    const got = plan([DESIRED[to] as DesiredServer], [ACTUAL[from]], backend);
    assert.deepEqual(got.commands.map(formatCommand), expected, `${from} -> ${to}`);
    assert.deepEqual(got.problems, []);
  }
});

test("a port change alone moves the address; the same IPv6 address written differently does not", () => {
  const want: DesiredServer = { server: "srv1", slot: 1, state: "ready", addr: "2001:0DB8:0:0::1", port: 443, weight: 10 };
  assert.deepEqual(plan([want], [actual("srv1", 4, "2001:db8::1", 443, 10)], backend).commands, []);
  assert.deepEqual(plan([want], [actual("srv1", 4, "2001:db8::1", 80, 10)], backend).commands.map(formatCommand), [
    "set server be/srv1 addr 2001:0DB8:0:0::1 port 443",
  ]);
  assert.equal(canonicalIp("::ffff:10.0.0.1"), canonicalIp("::ffff:a00:1"));
  assert.equal(canonicalIp("10.0.0.1"), "10.0.0.1");
});

test("a server missing from HAProxy is a problem, not a command; extra template servers go to maint", () => {
  const desired: DesiredServer[] = [
    { server: "srv1", slot: 1, state: "maint" },
    { server: "srv2", slot: 2, state: "ready", addr: "10.0.0.2", port: 80, weight: 1 },
  ];
  const got = plan(
    desired,
    [
      actual("static1", 0, "127.0.0.1", 8081, 1),
      actual("srv1", 5, "127.0.0.2", 80, 1),
      actual("srv3", 4, "10.0.0.3", 80, 1), // beyond the pool's size, left ready by someone
      actual("srv4", 5, "127.0.0.2", 80, 1),
      actual("srv10x", 4, "10.0.0.3", 80, 1), // not a template name
    ],
    backend,
  );
  assert.deepEqual(got.commands.map(formatCommand), ["set server be/srv3 state maint"]);
  assert.deepEqual(got.problems, ["server be/srv2 does not exist in HAProxy: its server-template has fewer than 2 servers"]);
});

test("inherited maintenance and CMAINT do not make a ready server look different", () => {
  const want = DESIRED.ready as DesiredServer;
  // IMAINT (tracked server down) and CMAINT: not ours to clear, no command every tick
  assert.deepEqual(plan([want], [actual("srv1", 0x02 | 0x04, "10.0.0.1", 8080, 10)], backend).commands, []);
});

test("a kept server gets no command whatever HAProxy has, and is not swept into maint as an unwanted server", () => {
  const keep: DesiredServer = { server: "srv1", slot: 1, state: "keep", reason: "port", problem: "no port" };
  for (const have of Object.values(ACTUAL)) {
    assert.deepEqual(plan([keep], [have], backend), { commands: [], problems: [] });
  }
  // Missing from HAProxy: nothing to say beyond the keep's own problem.
  assert.deepEqual(plan([keep], [], backend), { commands: [], problems: [] });
});
