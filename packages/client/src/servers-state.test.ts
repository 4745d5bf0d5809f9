import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { RuntimeApiError } from "@hsdo/core";
import { adminFlags, forcedState, parseServersState } from "./servers-state.ts";

// Captured from HAProxy 2.6 by test/fixtures/haproxy/capture.ts.
const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/haproxy/${name}`, import.meta.url), "utf8");

test("a fresh server-template: every server in maint (FMAINT|CMAINT), at the placeholder, weight 1", () => {
  const state = parseServersState(fixture("servers-state-fresh.txt"));
  assert.deepEqual([...state.keys()], ["be_app", "be_noport", "be_check", "be_v6", "be_noaddr", "be_mixed"]);
  const app = state.get("be_app") ?? [];
  assert.deepEqual(
    app.map((s) => [s.name, s.id, s.addr, s.port, s.state, s.adminState, s.opState, s.uweight, s.iweight]),
    [1, 2, 3, 4].map((n) => [`srv${n}`, n, "127.0.0.2", 80, "maint", 5, 0, 1, 1]),
  );
  assert.deepEqual(app[0]?.adminFlags, ["FMAINT", "CMAINT"]);
  assert.equal(app[0]?.backendId, 2);
  assert.equal(app[0]?.inMaintenance, true);
  // declared without a port: srv_port 0
  assert.deepEqual(state.get("be_noport")?.map((s) => s.port), [0, 0]);
  assert.deepEqual(state.get("be_v6")?.map((s) => s.addr), ["::1", "::1"]);
  // init-addr none: no address ("-"), RMAINT set as well
  const noaddr = state.get("be_noaddr")?.[0];
  assert.equal(noaddr?.addr, undefined);
  assert.deepEqual(noaddr?.adminFlags, ["FMAINT", "CMAINT", "RMAINT"]);
  // a plain server before the template takes id 1
  assert.deepEqual(state.get("be_mixed")?.map((s) => `${s.name}#${s.id}:${s.state}`), ["static1#1:ready", "m1#2:maint", "m2#3:maint"]);
});

test("after set server addr/weight/state: ready, drain and maint read from the forced bits, uweight as set", () => {
  const state = parseServersState(fixture("servers-state-applied.txt"));
  const app = state.get("be_app") ?? [];
  const view = app.map((s) => ({ name: s.name, addr: s.addr, port: s.port, state: s.state, admin: s.adminState, op: s.opState, w: s.uweight }));
  assert.deepEqual(view, [
    // `state ready` clears FMAINT; HAProxy 2.6 keeps CMAINT (4) on a server it serves
    { name: "srv1", addr: "10.0.0.1", port: 8080, state: "ready", admin: 4, op: 2, w: 10 },
    // drain: FDRAIN|CMAINT, weight kept as set
    { name: "srv2", addr: "10.0.0.2", port: 8080, state: "drain", admin: 12, op: 2, w: 7 },
    // back to maint: address kept
    { name: "srv3", addr: "10.0.0.3", port: 8081, state: "maint", admin: 5, op: 0, w: 1 },
    { name: "srv4", addr: "127.0.0.2", port: 80, state: "maint", admin: 5, op: 0, w: 1 },
  ]);
  assert.equal(app[0]?.inMaintenance, false);
  const v1 = state.get("be_v6")?.[0];
  assert.deepEqual([v1?.addr, v1?.port, v1?.uweight, v1?.state], ["2001:db8::10", 443, 256, "ready"]);
  assert.deepEqual(state.get("be_noport")?.map((s) => [s.port, s.state]), [[9000, "ready"], [0, "maint"]]);
  assert.deepEqual(state.get("be_mixed")?.map((s) => [s.name, s.uweight, s.state]), [["static1", 1, "ready"], ["m1", 1, "maint"], ["m2", 0, "ready"]]);
});

test("one backend, and a backend without servers", () => {
  const one = parseServersState(fixture("servers-state-be_app.txt"));
  assert.deepEqual([...one.keys()], ["be_app"]);
  assert.equal(one.get("be_app")?.length, 4);
  assert.equal(parseServersState(fixture("servers-state-be_empty.txt")).size, 0);
});

test("the admin state mask: forced bits decide the state, inherited and config bits do not", () => {
  assert.equal(forcedState(0), "ready");
  assert.equal(forcedState(0x04), "ready");
  assert.equal(forcedState(0x02), "ready");
  assert.equal(forcedState(0x10), "ready");
  assert.equal(forcedState(0x08 | 0x04), "drain");
  assert.equal(forcedState(0x01 | 0x08), "maint");
  assert.deepEqual(adminFlags(0x7f), ["FMAINT", "IMAINT", "CMAINT", "FDRAIN", "IDRAIN", "RMAINT", "HMAINT"]);
});

test("an unknown format version is rejected, quoting the line", () => {
  const text = fixture("servers-state-be_app.txt").replace(/^1\n/, "2\n");
  assert.throws(() => parseServersState(text), (err: unknown) => {
    assert.ok(err instanceof RuntimeApiError);
    assert.match(err.message, /unknown format version line "2"/);
    return true;
  });
});

test("answers that are not a servers state are rejected with what was wrong", () => {
  const good = fixture("servers-state-be_app.txt");
  const cases: [string, RegExp][] = [
    ["", /empty answer/],
    ["No such backend.\n", /unknown format version line "No such backend\."/],
    ["1\n2 be_app 1 srv1\n", /header/],
    ["1\n# be_id be_name srv_id srv_name\n", /header lacks srv_addr/],
    [good.replace(" srv2 10.0.0.2", " srv2"), /line 4 has 24 fields, the header 25/],
    [good.replace("srv4 127.0.0.2 0 5", "srv4 127.0.0.2 x 5"), /srv_op_state "x" is not a number/],
    [good.replace("srv4 127.0.0.2 0 5", "srv4 127.0.0.2 7 5"), /srv_op_state 7 is not 0\.\.3/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parseServersState(text), expected, JSON.stringify(text.slice(0, 40)));
  }
});
