import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
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
  // a live server that changes target goes through maint: never the new address with the old weight, state or health
  ["readyElsewhere", "ready", [S("maint"), A, W, S("ready")]],
  ["readyElsewhere", "drain", [S("maint"), A, W, S("drain")]],
  ["maintOld", "maint", []],
  ["maintOld", "ready", [S("ready")]],
  ["maintOld", "drain", [S("drain")]],
];

test("transition table: only the differences; a live server changing address goes to maint first; address, weight, state; to maint only the state", () => {
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
    "set server be/srv1 state maint",
    "set server be/srv1 addr 2001:0DB8:0:0::1 port 443",
    "set server be/srv1 state ready",
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

/** What one server holds, as far as traffic is concerned. */
interface Held {
  state: "ready" | "drain" | "maint";
  addr: string | undefined;
  port: number;
  weight: number;
}

function run(held: Held, cmd: ReturnType<typeof plan>["commands"][number]): Held {
  switch (cmd.kind) {
    case "setAddr":
      return { ...held, addr: cmd.addr, port: cmd.port };
    case "setWeight":
      return { ...held, weight: cmd.weight };
    case "setState":
      return { ...held, state: cmd.state };
  }
}

test("property: after every prefix of a server's commands, a live server holds the old target's whole (address, port, weight) or the new one's", () => {
  const addr = fc.constantFrom("10.0.0.1", "10.0.0.2", "127.0.0.2", "2001:db8::1");
  const port = fc.constantFrom(1, 80, 8080);
  const weight = fc.integer({ min: 0, max: 12 });
  const adminState = fc.constantFrom(0, 1, 4, 5, 8, 12, 0x02 | 0x04, 0x08 | 0x04);
  const desiredArb: fc.Arbitrary<DesiredServer> = fc.oneof(
    fc.constant<DesiredServer>({ server: "srv1", slot: 1, state: "maint" }),
    fc.record({ state: fc.constantFrom<"ready" | "drain">("ready", "drain"), addr, port, weight }).map((d) => ({ server: "srv1", slot: 1, ...d })),
  );
  fc.assert(
    fc.property(adminState, fc.option(addr, { nil: undefined }), port, weight, desiredArb, (admin, haveAddr, havePort, haveWeight, want) => {
      const have = actual("srv1", admin, haveAddr, havePort, haveWeight);
      const { commands } = plan([want], [have], backend);
      const before: Held = { state: have.state, addr: have.addr, port: have.port, weight: have.uweight };
      const old = { addr: before.addr, port: before.port, weight: before.weight };
      if (want.state === "keep") return;
      const next = { addr: want.addr, port: want.port, weight: want.weight };
      let held = before;
      for (let i = 0; i <= commands.length; i++) {
        if (i > 0) held = run(held, commands[i - 1]!);
        if (held.state === "maint") continue;
        const now = { addr: held.addr, port: held.port, weight: held.weight };
        const sameAddr = (a: string | undefined, b: string | undefined) => a === b || (a !== undefined && b !== undefined && canonicalIp(a) === canonicalIp(b));
        const whole = (t: { addr: string | undefined; port: number | undefined; weight: number | undefined }) => sameAddr(t.addr, now.addr) && t.port === now.port && t.weight === now.weight;
        assert.ok(
          whole(old) || (want.state !== "maint" && whole(next)),
          `after ${i} of ${commands.map(formatCommand).join(" | ")}: live at ${JSON.stringify(now)}, old ${JSON.stringify(old)}, new ${JSON.stringify(next)}`,
        );
      }
      // and the whole list gets there
      if (want.state === "maint") assert.equal(held.state, "maint");
      else assert.deepEqual({ ...held, addr: canonicalIp(held.addr ?? "") }, { state: want.state, addr: canonicalIp(want.addr!), port: want.port, weight: want.weight });
      // a second plan from the reached state is empty
      const reached = actual("srv1", held.state === "maint" ? 1 | (admin & 4) : held.state === "drain" ? 8 | (admin & 4) : admin & 4, held.addr, held.port, held.weight);
      assert.deepEqual(plan([want], [reached], backend).commands, []);
    }),
    { numRuns: 2000 },
  );
});

test("a kept server gets no command whatever HAProxy has, and is not swept into maint as an unwanted server", () => {
  const keep: DesiredServer = { server: "srv1", slot: 1, state: "keep", reason: "port", problem: "no port" };
  for (const have of Object.values(ACTUAL)) {
    assert.deepEqual(plan([keep], [have], backend), { commands: [], problems: [] });
  }
  // Missing from HAProxy: nothing to say beyond the keep's own problem.
  assert.deepEqual(plan([keep], [], backend), { commands: [], problems: [] });
});
