import { test } from "node:test";
import assert from "node:assert/strict";
import type { BackendConfig, Slot, Snapshot } from "@hsdo/core";
import { startHaproxy, templateBackend, type HaproxyHandle, backendOf, describeServers, readySlot, snapshotOf } from "@hsdo/testkit";
import { formatCommand, type RuntimeCommand } from "./commands.ts";
import { Reconciler, type ReconcileObserver } from "./reconcile.ts";
import { RuntimeApi } from "./runtime-api.ts";

const lines = (cmds: readonly RuntimeCommand[]) => cmds.map(formatCommand);

async function start(backends: readonly BackendConfig[], count: number): Promise<HaproxyHandle> {
  return startHaproxy({ body: backends.map((b) => templateBackend(b.name, b.prefix, count)).join("\n") });
}

async function stateOf(haproxy: HaproxyHandle, backend: string): Promise<Record<string, string>> {
  return describeServers(await haproxy.command(`show servers state ${backend}`), backend);
}

/** The expected `describeServers` view of a backend: the listed servers, every other one of 1..count in maint. */
function expectView(prefix: string, count: number, live: Record<number, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (let n = 1; n <= count; n++) out[`${prefix}${n}`] = live[n] ?? "maint";
  return out;
}

test("a snapshot applied to a fresh HAProxy matches exactly; the second tick sends nothing", async (t) => {
  const be = backendOf("be_app", "srv");
  const haproxy = await start([be], 10);
  t.after(() => haproxy.stop());
  const reconciler = new Reconciler({ api: new RuntimeApi({ socket: haproxy.socket }), backends: [be], client: { az: "", groups: [] } });
  const snap = snapshotOf("p", 8, [
    readySlot(1, "10.0.0.1"),
    readySlot(2, "10.0.0.2", { weight: 1 }),
    readySlot(3, "10.0.0.3", { state: "drain", weight: 4 }),
    readySlot(5, "2001:db8::5", { port: 443, weight: 256 }),
    readySlot(8, "10.0.0.8", { weight: 0 }),
  ]);
  const first = await reconciler.tick(snap);
  assert.deepEqual(first.failed, []);
  assert.deepEqual(first.problems, []);
  assert.deepEqual(lines(first.sent), [
    "set server be_app/srv1 addr 10.0.0.1 port 8080",
    "set server be_app/srv1 weight 10",
    "set server be_app/srv1 state ready",
    // weight 1 is the template's weight already: no command
    "set server be_app/srv2 addr 10.0.0.2 port 8080",
    "set server be_app/srv2 state ready",
    "set server be_app/srv3 addr 10.0.0.3 port 8080",
    "set server be_app/srv3 weight 4",
    "set server be_app/srv3 state drain",
    "set server be_app/srv5 addr 2001:db8::5 port 443",
    "set server be_app/srv5 weight 256",
    "set server be_app/srv5 state ready",
    "set server be_app/srv8 addr 10.0.0.8 port 8080",
    "set server be_app/srv8 weight 0",
    "set server be_app/srv8 state ready",
  ]);
  assert.deepEqual(first.drift, []);
  assert.deepEqual(
    await stateOf(haproxy, "be_app"),
    expectView("srv", 10, {
      1: "ready 10.0.0.1:8080 w10",
      2: "ready 10.0.0.2:8080 w1",
      3: "drain 10.0.0.3:8080 w4",
      5: "ready 2001:db8::5:443 w256",
      8: "ready 10.0.0.8:8080 w0",
    }),
  );
  const second = await reconciler.tick(snap);
  assert.deepEqual([second.planned, second.sent, second.failed, second.problems], [[], [], [], []]);
});

test("dedicated and fallback backends, by group and by AZ, with and without allInFallback", async (t) => {
  const backends = [
    backendOf("be_ded", "d", { select: "dedicated" }),
    backendOf("be_fb", "f", { select: "fallback" }),
    backendOf("be_fball", "g", { select: "fallback", allInFallback: true }),
    backendOf("be_all", "a", { select: "all", port: 80 }),
  ];
  const haproxy = await start(backends, 6);
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket });
  const slots = [
    readySlot(1, "10.0.1.1", { group: "asg-a", az: "az-1" }),
    readySlot(2, "10.0.1.2", { group: "asg-a", az: "az-2" }),
    readySlot(3, "10.0.2.3", { group: "asg-b", az: "az-1" }),
    readySlot(4, "10.0.2.4", { group: "asg-b", az: "az-2" }),
    readySlot(5, "10.0.2.5", { group: "asg-b", az: "az-2", state: "drain" }),
  ];
  const r = (n: number, port = 8080, state = "ready") => `${state} ${slots[n - 1]?.addr}:${port} w10`;
  const all = { 1: r(1, 80), 2: r(2, 80), 3: r(3, 80), 4: r(4, 80), 5: r(5, 80, "drain") };
  const everything = { 1: r(1), 2: r(2), 3: r(3), 4: r(4), 5: r(5, 8080, "drain") };

  // a client of group asg-a (no AZ): slots 1, 2 are dedicated
  const byGroup = new Reconciler({ api, backends, client: { az: "", groups: ["asg-a"] } });
  let result = await byGroup.tick(snapshotOf("p", 6, slots));
  assert.deepEqual(result.failed, []);
  assert.deepEqual(await stateOf(haproxy, "be_ded"), expectView("d", 6, { 1: r(1), 2: r(2) }));
  assert.deepEqual(await stateOf(haproxy, "be_fb"), expectView("f", 6, { 3: r(3), 4: r(4), 5: r(5, 8080, "drain") }));
  assert.deepEqual(await stateOf(haproxy, "be_fball"), expectView("g", 6, everything));
  assert.deepEqual(await stateOf(haproxy, "be_all"), expectView("a", 6, all));

  // slot 3's target changes group (asg-b -> asg-a): it moves from fallback to dedicated, same slot
  const moved = slots.map((s) => (s.slot === 3 ? { ...s, group: "asg-a" } : s));
  result = await byGroup.tick(snapshotOf("p", 6, moved));
  assert.deepEqual(lines(result.sent), ["set server be_ded/d3 addr 10.0.2.3 port 8080", "set server be_ded/d3 weight 10", "set server be_ded/d3 state ready", "set server be_fb/f3 state maint"]);
  assert.deepEqual(await stateOf(haproxy, "be_ded"), expectView("d", 6, { 1: r(1), 2: r(2), 3: r(3) }));
  assert.deepEqual(await stateOf(haproxy, "be_fb"), expectView("f", 6, { 4: r(4), 5: r(5, 8080, "drain") }));

  // another client on the same HAProxy, by AZ az-2 (no groups): slots 2, 4, 5 are dedicated
  const byAz = new Reconciler({ api, backends, client: { az: "az-2", groups: [] } });
  result = await byAz.tick(snapshotOf("p", 6, moved));
  assert.deepEqual(result.failed, []);
  assert.deepEqual(await stateOf(haproxy, "be_ded"), expectView("d", 6, { 2: r(2), 4: r(4), 5: r(5, 8080, "drain") }));
  assert.deepEqual(await stateOf(haproxy, "be_fb"), expectView("f", 6, { 1: r(1), 3: r(3) }));
  assert.deepEqual(await stateOf(haproxy, "be_fball"), expectView("g", 6, everything));
  assert.deepEqual(await stateOf(haproxy, "be_all"), expectView("a", 6, all));
  assert.deepEqual((await byAz.tick(snapshotOf("p", 6, moved))).planned, []);
});

test("drift: a hand-made change is put back on the next tick; a restarted HAProxy is fully restored", async (t) => {
  const be = backendOf("be", "s");
  const haproxy = await start([be], 4);
  t.after(() => haproxy.stop());
  const counts = { sent: 0, failed: 0, drift: 0 };
  const observer: ReconcileObserver = {
    commandsSent: (b, n) => void (counts.sent += b === "be" ? n : 0),
    commandsFailed: (_b, n) => void (counts.failed += n),
    driftCorrected: (_b, n) => void (counts.drift += n),
  };
  const reconciler = new Reconciler({ api: new RuntimeApi({ socket: haproxy.socket }), backends: [be], client: { az: "", groups: [] }, observer });
  const snap = snapshotOf("p", 4, [readySlot(1, "10.0.0.1"), readySlot(2, "10.0.0.2", { state: "drain", weight: 5 }), readySlot(3, "10.0.0.3")]);
  const expected = expectView("s", 4, { 1: "ready 10.0.0.1:8080 w10", 2: "drain 10.0.0.2:8080 w5", 3: "ready 10.0.0.3:8080 w10" });
  const first = await reconciler.tick(snap);
  assert.deepEqual([counts.sent, counts.failed, counts.drift], [first.sent.length, 0, 0]);

  for (const line of ["set server be/s1 state maint", "set server be/s3 weight 77", "set server be/s2 addr 10.9.9.9 port 1", "set server be/s4 state ready"]) {
    await haproxy.command(line);
  }
  const repair = await reconciler.tick(snap);
  assert.deepEqual(lines(repair.sent), [
    "set server be/s1 state ready",
    // live (drain) at a wrong address: through maint, so it never drains at the new address with another's state
    "set server be/s2 state maint",
    "set server be/s2 addr 10.0.0.2 port 8080",
    "set server be/s2 state drain",
    "set server be/s3 weight 10",
    "set server be/s4 state maint",
  ]);
  assert.deepEqual(lines(repair.drift), lines(repair.sent));
  assert.equal(counts.drift, 6);
  assert.deepEqual(await stateOf(haproxy, "be"), expected);

  await haproxy.restart();
  assert.deepEqual(await stateOf(haproxy, "be"), expectView("s", 4, {}), "restarted from the template");
  const restore = await reconciler.tick(snap);
  assert.deepEqual(restore.failed, []);
  assert.equal(restore.sent.length, first.sent.length);
  assert.equal(restore.drift.length, restore.sent.length);
  assert.deepEqual(await stateOf(haproxy, "be"), expected);
  assert.deepEqual((await reconciler.tick(snap)).planned, []);

  // a changed snapshot is a change, not drift
  const changed = await reconciler.tick(snapshotOf("p", 4, [readySlot(1, "10.0.0.1", { weight: 3 })]));
  assert.deepEqual(changed.drift, []);
  assert.equal(changed.sent.length, 3);
});

test("injection: bad slot items never produce anything but `state maint` for their slot", async (t) => {
  const be = backendOf("be", "srv");
  const haproxy = await start([be], 9);
  t.after(() => haproxy.stop());
  const reconciler = new Reconciler({ api: new RuntimeApi({ socket: haproxy.socket }), backends: [be], client: { az: "", groups: [] } });
  const good = Array.from({ length: 9 }, (_, i) => readySlot(i + 1, `10.0.0.${i + 1}`));
  // every server live first, so that a bad item has something to take down
  assert.equal((await reconciler.tick(snapshotOf("p", 9, good))).sent.length, 27);

  const bad = (slot: number, fields: Record<string, unknown>) => ({ ...readySlot(slot, `10.0.0.${slot}`), ...fields }) as unknown as Slot;
  const poisoned: Snapshot = snapshotOf("p", 9, [
    bad(1, { addr: "10.0.0.1; set server be/srv9 state maint" }),
    bad(2, { addr: "10.0.0.2\nset server be/srv9 weight 0" }),
    bad(3, { addr: "10.0.0.3 port 1" }),
    bad(4, { name: "i-4; shutdown sessions server be/srv9" }),
    bad(5, { port: 65536 }),
    bad(6, { weight: 257 }),
    bad(7, { addr: "origin.example.com" }),
    bad(8, { weight: -1, group: "g\nx" }),
    readySlot(9, "10.0.0.9"),
  ]);
  const result = await reconciler.tick(poisoned);
  const expected = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => `set server be/srv${n} state maint`);
  assert.deepEqual(lines(result.planned), expected);
  assert.deepEqual(lines(result.sent), expected);
  assert.equal(result.problems.length, 8);
  assert.match(result.problems.join("\n"), /be\/srv1: slot 1 is invalid: addr "10\.0\.0\.1; set server/);
  assert.deepEqual(await stateOf(haproxy, "be"), expectView("srv", 9, { 9: "ready 10.0.0.9:8080 w10" }));
});

test("every transition settles: after applying, the next tick plans zero commands", async (t) => {
  // Each server goes through one ordered pair (from, to) of slot states.
  const variants: ((n: number) => Slot | undefined)[] = [
    () => undefined, // free
    (n) => readySlot(n, "10.0.0.1", { weight: 10 }),
    (n) => readySlot(n, "10.0.0.1", { weight: 3 }),
    (n) => readySlot(n, "10.0.0.2", { port: 9000, weight: 10 }),
    (n) => readySlot(n, "10.0.0.1", { state: "drain", weight: 10 }),
    (n) => readySlot(n, "10.0.0.1", { state: "drain", weight: 0 }),
    (n) => readySlot(n, "2001:db8::1", { weight: 1 }),
  ];
  const pairs = variants.flatMap((from) => variants.map((to) => [from, to] as const));
  const size = pairs.length;
  const be = backendOf("be", "s");
  const haproxy = await start([be], size);
  t.after(() => haproxy.stop());
  const reconciler = new Reconciler({ api: new RuntimeApi({ socket: haproxy.socket }), backends: [be], client: { az: "", groups: [] } });
  const snapshot = (pick: 0 | 1) =>
    snapshotOf("p", size, pairs.map((pair, i) => pair[pick](i + 1)).filter((s): s is Slot => s !== undefined));

  for (const pick of [0, 1] as const) {
    const applied = await reconciler.tick(snapshot(pick));
    assert.deepEqual(applied.failed, []);
    const again = await reconciler.tick(snapshot(pick));
    assert.deepEqual(lines(again.planned), [], `step ${pick}: second tick`);
  }
});

test("dry-run plans the same commands and sends none; a too-small template is a problem, the rest applies", async (t) => {
  const be = backendOf("be", "s");
  const other = backendOf("be_other", "o", { pool: "q" });
  const haproxy = await start([be], 2);
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket });
  const snap = snapshotOf("p", 3, [readySlot(1, "10.0.0.1"), readySlot(3, "10.0.0.3")]);
  const client = { az: "", groups: [] };

  const dry = await new Reconciler({ api, backends: [be, other], client, dryRun: true }).tick(snap);
  assert.equal(dry.dryRun, true);
  assert.deepEqual(lines(dry.planned), ["set server be/s1 addr 10.0.0.1 port 8080", "set server be/s1 weight 10", "set server be/s1 state ready"]);
  assert.deepEqual(dry.sent, []);
  assert.deepEqual(Reconciler.lines(dry.planned), lines(dry.planned));
  assert.deepEqual(await stateOf(haproxy, "be"), expectView("s", 2, {}));
  assert.deepEqual(dry.problems, [
    'backend be_other: HAProxy answered "Can\'t find backend." to "show servers state"; left as it is',
    "server be/s3 does not exist in HAProxy: its server-template has fewer than 3 servers",
  ]);

  const real = await new Reconciler({ api, backends: [be], client }).tick(snap);
  assert.deepEqual(lines(real.sent), lines(dry.planned));
  assert.deepEqual(await stateOf(haproxy, "be"), expectView("s", 2, { 1: "ready 10.0.0.1:8080 w10" }));

  // no snapshot for the backend's pool: left as it is
  const none = await new Reconciler({ api, backends: [backendOf("be", "s", { pool: "q" })], client }).tick(snap);
  assert.deepEqual(none.planned, []);
  assert.deepEqual(none.problems, ["backend be: pool q has no snapshot yet; HAProxy left as it is"]);
});

test("a refused command is reported by name with HAProxy's answer; that server's later commands are held, others apply", async (t) => {
  const haproxy = await startHaproxy({
    body: [
      templateBackend("be", "s", 2),
      "backend be_noaddr",
      // no IP address: HAProxy refuses `set server addr` on these
      "    server-template n 1-2 example.invalid:80 disabled init-addr none",
      "",
    ].join("\n"),
  });
  t.after(() => haproxy.stop());
  const failures: number[] = [];
  const reconciler = new Reconciler({
    api: new RuntimeApi({ socket: haproxy.socket }),
    backends: [backendOf("be", "s"), backendOf("be_noaddr", "n")],
    client: { az: "", groups: [] },
    observer: { commandsFailed: (_b, n) => void failures.push(n) },
  });
  const snap = snapshotOf("p", 2, [readySlot(1, "10.0.0.1"), readySlot(2, "10.0.0.2", { weight: 1 })]);
  const result = await reconciler.tick(snap);
  // HAProxy's own words, which differ slightly by version: 2.6 "... through
  // configuration file by 'stats socket command'", 3.0 "... through configuration file."
  const refused = /^Update for the current server address family is only supported through configuration file( by 'stats socket command'|\.)$/;
  for (const f of result.failed.filter((f) => f.command.kind === "setAddr")) assert.match(f.text, refused);
  assert.deepEqual(
    result.failed.map((f) => [formatCommand(f.command), refused.test(f.text) ? "(refused: address family)" : f.text, f.unrecognised ?? false]),
    [
      ["set server be_noaddr/n1 addr 10.0.0.1 port 8080", "(refused: address family)", false],
      ["set server be_noaddr/n1 weight 10", 'not sent: "set server be_noaddr/n1 addr 10.0.0.1 port 8080" failed before it', false],
      ["set server be_noaddr/n1 state ready", 'not sent: "set server be_noaddr/n1 addr 10.0.0.1 port 8080" failed before it', false],
      ["set server be_noaddr/n2 addr 10.0.0.2 port 8080", "(refused: address family)", false],
      ["set server be_noaddr/n2 state ready", 'not sent: "set server be_noaddr/n2 addr 10.0.0.2 port 8080" failed before it', false],
    ],
  );
  assert.equal(result.failed[0]?.severity, 4);
  assert.deepEqual(failures, [5]);
  assert.equal(result.sent.length, 5);
  assert.deepEqual(await stateOf(haproxy, "be"), { s1: "ready 10.0.0.1:8080 w10", s2: "ready 10.0.0.2:8080 w1" });
  const noaddr = describeServers(await haproxy.command("show servers state be_noaddr"), "be_noaddr");
  assert.deepEqual(noaddr, { n1: "maint", n2: "maint" }, "never made ready at no address");
  // failed servers are retried next tick, and that is not counted as drift
  const again = await reconciler.tick(snap);
  assert.equal(again.failed.length, 5);
  assert.deepEqual(again.drift, []);
});

test("a slot at 169.254.169.254, or at 127.0.0.1 without allowLoopback, is put in maint on HAProxy with the problem reported", async (t) => {
  const be = backendOf("be_ref", "srv");
  const haproxy = await start([be], 4);
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket });
  const reconciler = new Reconciler({ api, backends: [be], client: { az: "", groups: [] } });
  const first = await reconciler.tick(snapshotOf("p", 4, [readySlot(1, "10.0.0.1"), readySlot(2, "10.0.0.2"), readySlot(3, "10.0.0.3")]));
  assert.deepEqual([first.failed, first.problems], [[], []]);
  assert.deepEqual(first.refused, undefined);

  // A hand edit of the table (or an older server) puts the metadata service and loopback in slots 1 and 2.
  const edited = snapshotOf("p", 4, [readySlot(1, "169.254.169.254"), readySlot(2, "127.0.0.1"), readySlot(3, "10.0.0.3")]);
  const second = await reconciler.tick(edited);
  assert.deepEqual(second.failed, []);
  assert.deepEqual(lines(second.sent), ["set server be_ref/srv1 state maint", "set server be_ref/srv2 state maint"], "no address is set: the refused one never reaches HAProxy");
  assert.equal(second.problems.length, 2, second.problems.join("\n"));
  assert.match(second.problems[0]!, /^be_ref\/srv1: slot 1 \(i-1\) is refused: addr 169\.254\.169\.254 is link-local \(the instance metadata service lives there\): never a target$/);
  assert.match(second.problems[1]!, /^be_ref\/srv2: slot 2 \(i-2\) is refused: addr 127\.0\.0\.1 is loopback/);
  assert.deepEqual(second.refused, [{ pool: "p", slot: 1 }, { pool: "p", slot: 2 }]);
  const view = await stateOf(haproxy, "be_ref");
  assert.deepEqual(view, expectView("srv", 4, { 3: "ready 10.0.0.3:8080 w10" }));
  const raw = await haproxy.command("show servers state be_ref");
  assert.ok(!raw.includes("169.254.169.254") && !/\s127\.0\.0\.1\s/.test(raw), `HAProxy never got a refused address:\n${raw}`);

  // The same table with allowLoopback: 127.0.0.1 is applied, 169.254.169.254 still not.
  const local = new Reconciler({ api, backends: [be], client: { az: "", groups: [] }, allowLoopback: true });
  const third = await local.tick(edited);
  assert.deepEqual(third.failed, []);
  assert.deepEqual(third.refused, [{ pool: "p", slot: 1 }]);
  assert.deepEqual(await stateOf(haproxy, "be_ref"), expectView("srv", 4, { 2: "ready 127.0.0.1:8080 w10", 3: "ready 10.0.0.3:8080 w10" }));
});

test("cannot reconcile: a portless slot for a portless backend leaves the live server untouched and reports it", async (t) => {
  const be = backendOf("be_np", "s");
  const haproxy = await start([be], 3);
  t.after(() => haproxy.stop());
  const reconciler = new Reconciler({ api: new RuntimeApi({ socket: haproxy.socket }), backends: [be], client: { az: "", groups: [] } });
  // s1 serves 10.0.0.1:8080 at weight 7, s2 is drained at weight 3, from targets that had a port.
  const first = await reconciler.tick(snapshotOf("p", 3, [readySlot(1, "10.0.0.1", { weight: 7 }), readySlot(2, "10.0.0.2", { state: "drain", weight: 3 })]));
  assert.deepEqual([first.failed, first.problems, first.kept], [[], [], []]);
  const before = await stateOf(haproxy, "be_np");
  assert.deepEqual(before, expectView("s", 3, { 1: "ready 10.0.0.1:8080 w7", 2: "drain 10.0.0.2:8080 w3" }));
  const raw = await haproxy.command("show servers state be_np");

  // The same slots now carry no port (e.g. the server lost `server.aws.port`), with a new address and weight;
  // slot 3 is a newcomer without port. Nothing can be known: nothing is sent, each is reported.
  const portless = snapshotOf("p", 3, [
    readySlot(1, "10.0.0.11", { port: undefined, weight: 1 }),
    readySlot(2, "10.0.0.2", { port: undefined, state: "ready", weight: 10 }),
    readySlot(3, "10.0.0.3", { port: undefined }),
  ]);
  const second = await reconciler.tick(portless);
  assert.deepEqual([second.planned, second.sent, second.failed], [[], [], []]);
  assert.deepEqual(
    second.kept.map((k) => [k.backend, k.server, k.slot, k.reason]),
    [
      ["be_np", "s1", 1, "port"],
      ["be_np", "s2", 2, "port"],
      ["be_np", "s3", 3, "port"],
    ],
  );
  assert.equal(second.problems.length, 3);
  assert.match(second.problems[0] ?? "", /^be_np\/s1: slot 1 \(i-1\) of pool p has no port and backend be_np sets none: add `port: <port the targets listen on>`.*under backend be_np in client\.backends.*; left as it is$/);
  assert.deepEqual(await stateOf(haproxy, "be_np"), before, "address, weight and state unchanged");
  // Byte for byte, but for the time since the last change.
  const strip = (text: string) => text.split("\n").map((l) => l.split(" ").filter((_, i) => i !== 9).join(" "));
  assert.deepEqual(strip(await haproxy.command("show servers state be_np")), strip(raw));

  // Once the port is known again (the backend sets one), the servers are driven as usual.
  const fixed = new Reconciler({ api: new RuntimeApi({ socket: haproxy.socket }), backends: [{ ...be, port: 9090 }], client: { az: "", groups: [] } });
  const third = await fixed.tick(portless);
  assert.deepEqual([third.failed, third.problems, third.kept], [[], [], []]);
  assert.deepEqual(await stateOf(haproxy, "be_np"), expectView("s", 3, { 1: "ready 10.0.0.11:9090 w1", 2: "ready 10.0.0.2:9090 w10", 3: "ready 10.0.0.3:9090 w10" }));
});

test("a backend that refuses weights (balance uri, map-based) is reported with the line to add", async (t) => {
  const be = backendOf("be_uri", "u", { port: 80 });
  const haproxy = await startHaproxy({ body: ["backend be_uri", "    balance uri", "    server-template u 1-2 127.0.0.2:80 disabled", ""].join("\n") });
  t.after(() => haproxy.stop());
  const reconciler = new Reconciler({ api: new RuntimeApi({ socket: haproxy.socket }), backends: [be], client: { az: "", groups: [] } });
  const r = await reconciler.tick(snapshotOf("p", 2, [readySlot(1, "10.0.0.1", { weight: 5 })]));
  assert.deepEqual(
    r.failed.map((f) => [f.line, f.text]),
    [
      ["set server be_uri/u1 weight 5", "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'."],
      // never live at a weight that is not the target's
      ["set server be_uri/u1 state ready", 'not sent: "set server be_uri/u1 weight 5" failed before it'],
    ],
  );
  assert.ok(
    r.problems.some((p) => /^backend be_uri uses a static load-balancing algorithm.*add `hash-type consistent` under `backend be_uri`.*the weights of its servers cannot be set$/.test(p)),
    r.problems.join("\n"),
  );
});
