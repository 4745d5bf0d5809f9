import { test } from "node:test";
import assert from "node:assert/strict";
import { PreflightError, type Slot } from "@hsdo/core";
import { checkPortOmissions, desiredServers, portOmissions, type DesiredServer } from "./desired.ts";
import { backendOf, readySlot, snapshotOf } from "@hsdo/testkit";

const client = { az: "az-a", groups: ["asg-a"] };
const brief = (list: DesiredServer[]) =>
  list.map((d) =>
    d.state === "keep" ? `${d.server} keep` : d.state === "maint" ? `${d.server} maint` : `${d.server} ${d.state} ${d.addr}:${d.port} w${d.weight}`,
  );

test("select all: one entry per slot, ready and drain carry address, port and weight, free is maint", () => {
  const snap = snapshotOf("p", 4, [
    readySlot(1, "10.0.0.1"),
    readySlot(2, "10.0.0.2", { state: "drain", weight: 3, drainUntil: 5 }),
    readySlot(4, "2001:db8::4", { port: 443 }),
  ]);
  const got = desiredServers(snap, backendOf("be", "srv"), client);
  assert.deepEqual(brief(got), ["srv1 ready 10.0.0.1:8080 w10", "srv2 drain 10.0.0.2:8080 w3", "srv3 maint", "srv4 ready 2001:db8::4:443 w10"]);
  assert.deepEqual(got.map((d) => d.slot), [1, 2, 3, 4]);
  assert.ok(got.every((d) => d.problem === undefined));
});

test("the backend's port wins over the target's; no port at all keeps the server as it is, with a problem naming the fix", () => {
  const snap = snapshotOf("p", 3, [
    readySlot(1, "10.0.0.1", { port: 9000 }),
    readySlot(2, "10.0.0.2", { port: undefined }),
    readySlot(3, "10.0.0.3", { port: undefined, state: "drain" }),
  ]);
  assert.deepEqual(brief(desiredServers(snap, backendOf("be", "s", { port: 80 }), client)), [
    "s1 ready 10.0.0.1:80 w10",
    "s2 ready 10.0.0.2:80 w10",
    "s3 drain 10.0.0.3:80 w10",
  ]);
  const noPort = desiredServers(snap, backendOf("be", "s"), client);
  assert.deepEqual(brief(noPort), ["s1 ready 10.0.0.1:9000 w10", "s2 keep", "s3 keep"]);
  assert.deepEqual(noPort[1], {
    server: "s2",
    slot: 2,
    state: "keep",
    reason: "port",
    problem:
      "slot 2 (i-2) of pool p has no port and backend be sets none: add `port: <port the targets listen on>` (e.g. `port: 8080`) " +
      "under backend be in client.backends, or have the server store one (server.aws.port for ASGs, the service's port in Consul, " +
      "`port` in the static file); left as it is",
  });
  // A free or unselected slot needs no port: maint as always.
  const freeToo = snapshotOf("p", 2, [readySlot(1, "10.0.0.1", { port: undefined, group: "asg-z", az: "az-z" })]);
  assert.deepEqual(brief(desiredServers(freeToo, backendOf("be", "s", { select: "dedicated" }), client)), ["s1 maint", "s2 maint"]);
});

test("portOmissions: the start-up check against the data lists, per backend without port, the live slots without one", () => {
  const snap = snapshotOf("p", 4, [
    readySlot(1, "10.0.0.1", { port: undefined }),
    readySlot(2, "10.0.0.2"),
    readySlot(4, "10.0.0.4", { port: undefined, group: "asg-z", az: "az-z" }),
  ]);
  const backends = [
    backendOf("be_all", "a"),
    backendOf("be_port", "b", { port: 80 }),
    backendOf("be_ded", "d", { select: "dedicated" }),
    backendOf("be_fb", "f", { select: "fallback" }),
    backendOf("be_other", "o", { pool: "other" }),
  ];
  const found = portOmissions([snap], backends, client);
  assert.deepEqual(
    found.map((f) => [f.backend, f.slots]),
    [
      ["be_all", [1, 4]],
      ["be_ded", [1]],
      ["be_fb", [4]],
    ],
  );
  assert.match(found[0]!.problem, /^backend be_all sets no port and 2 live slot\(s\) of pool p carry none \(slot 1, 4\): add `port: 8080` \(the port the targets listen on\) under backend be_all in client.backends/);
  assert.throws(
    () => checkPortOmissions([snap], backends, client),
    (err: unknown) => err instanceof PreflightError && /^the servers of be_all, be_ded, be_fb cannot be set:\n  - backend be_all /.test(err.message),
  );
  assert.doesNotThrow(() => checkPortOmissions([snap], [backendOf("be_port", "b", { port: 80 })], client));
  assert.doesNotThrow(() => checkPortOmissions([], backends, client), "no snapshot yet: nothing to check");
});

test("dedicated takes the client's groups or AZ; fallback the others, or everything with allInFallback", () => {
  const snap = snapshotOf("p", 5, [
    readySlot(1, "10.0.0.1", { group: "asg-a", az: "az-b" }), // my group
    readySlot(2, "10.0.0.2", { group: "asg-b", az: "az-a" }), // my AZ
    readySlot(3, "10.0.0.3", { group: "asg-b", az: "az-b" }), // neither
    readySlot(4, "10.0.0.4", { group: undefined, az: undefined }), // nothing known: not dedicated
  ]);
  const names = (b: Parameters<typeof desiredServers>[1], c = client) =>
    desiredServers(snap, b, c)
      .filter((d) => d.state !== "maint")
      .map((d) => d.slot);
  assert.deepEqual(names(backendOf("d", "d", { select: "dedicated" })), [1, 2]);
  assert.deepEqual(names(backendOf("f", "f", { select: "fallback" })), [3, 4]);
  assert.deepEqual(names(backendOf("f", "f", { select: "fallback", allInFallback: true })), [1, 2, 3, 4]);
  // by group only (no AZ known), and by AZ only
  assert.deepEqual(names(backendOf("d", "d", { select: "dedicated" }), { az: "", groups: ["asg-a"] }), [1]);
  assert.deepEqual(names(backendOf("d", "d", { select: "dedicated" }), { az: "az-b", groups: [] }), [1, 3]);
  // an empty client AZ never matches a slot without AZ
  assert.deepEqual(names(backendOf("d", "d", { select: "dedicated" }), { az: "", groups: [] }), []);
});

test("invalid, missing and unsafe slots are maint with the reason; nothing unchecked gets through", () => {
  const bad = (slot: number, fields: Record<string, unknown>) => ({ ...readySlot(slot, "10.0.0.1"), ...fields }) as unknown as Slot;
  const snap = snapshotOf(
    "p",
    9,
    [
      bad(1, { addr: "10.0.0.1; shutdown sessions server be/srv2" }),
      bad(2, { addr: "10.0.0.1\nset server be/srv3 state ready" }),
      bad(3, { name: "i-3 x" }),
      bad(4, { port: 70000 }),
      bad(5, { weight: 300 }),
      bad(6, { addr: "origin.example.com" }),
      bad(7, { group: "a;b" }),
      readySlot(9, "10.0.0.9"),
    ],
    [{ slot: 8, problems: ["state \"gone\" is not one of free, ready, drain"] }],
  );
  // the reader listed slot 8 as invalid, but a buggy reader might still leave a usable-looking item there
  snap.slots[7] = readySlot(8, "10.0.0.8");
  const got = desiredServers(snap, backendOf("be", "srv"), client);
  assert.deepEqual(brief(got), [...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `srv${n} maint`), "srv9 ready 10.0.0.9:8080 w10"]);
  assert.match(got[0]?.problem ?? "", /addr .* is not an IP address/);
  assert.match(got[3]?.problem ?? "", /port 70000 is not a port/);
  assert.match(got[4]?.problem ?? "", /weight 300 is not a weight/);
  assert.match(got[6]?.problem ?? "", /group "a;b" is not a name/);
  assert.match(got[7]?.problem ?? "", /slot 8 is invalid: state "gone"/);
  for (const d of got.slice(0, 8)) assert.equal(d.state === "keep" ? undefined : d.addr, undefined);

  const short = snapshotOf("p", 2, [readySlot(1, "10.0.0.1")]);
  short.slots.pop();
  assert.match(desiredServers(short, backendOf("be", "s"), client)[1]?.problem ?? "", /slot 2 is missing from the snapshot of pool p/);
});

test("a slot whose address can never be a target is maint with the slot and the reason; allowLoopback allows 127.x only", () => {
  const snap = snapshotOf("p", 7, [
    readySlot(1, "169.254.169.254"),
    readySlot(2, "127.0.0.1"),
    readySlot(3, "::ffff:127.0.0.9", { state: "drain", weight: 2 }),
    readySlot(4, "fe80::1"),
    readySlot(5, "fd00:ec2::254"),
    readySlot(6, "::ffff:169.254.169.254"),
    readySlot(7, "10.0.0.7"),
  ]);
  const off = desiredServers(snap, backendOf("be", "srv"), client);
  assert.deepEqual(brief(off), [...[1, 2, 3, 4, 5, 6].map((n) => `srv${n} maint`), "srv7 ready 10.0.0.7:8080 w10"]);
  assert.equal(off[0]?.problem, "slot 1 (i-1) is refused: addr 169.254.169.254 is link-local (the instance metadata service lives there): never a target");
  assert.match(off[1]?.problem ?? "", /^slot 2 \(i-2\) is refused: addr 127\.0\.0\.1 is loopback .*allowLoopback: true/);
  assert.deepEqual(off.map((d) => d.state !== "keep" && d.refused === true), [true, true, true, true, true, true, false]);
  for (const d of off.slice(0, 6)) assert.equal(d.state !== "keep" ? d.addr : "kept", undefined, "a refused address never reaches a command");

  const on = desiredServers(snap, backendOf("be", "srv"), client, { allowLoopback: true });
  assert.deepEqual(brief(on), ["srv1 maint", "srv2 ready 127.0.0.1:8080 w10", "srv3 drain ::ffff:127.0.0.9:8080 w2", "srv4 maint", "srv5 maint", "srv6 maint", "srv7 ready 10.0.0.7:8080 w10"]);
  assert.match(on[0]?.problem ?? "", /link-local/);
  assert.match(on[5]?.problem ?? "", /link-local/);

  // A slot no backend of this client selects is not applied, so not reported either.
  const dedicated = desiredServers(snapshotOf("p", 1, [readySlot(1, "169.254.169.254", { group: "asg-z", az: "az-z" })]), backendOf("d", "d", { select: "dedicated" }), client);
  assert.deepEqual(dedicated, [{ server: "d1", slot: 1, state: "maint" }]);
});
