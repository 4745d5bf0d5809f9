import { test } from "node:test";
import assert from "node:assert/strict";
import { hsdoClientSettings, hsdoCommands, mapHsdoItems, type HsdoItem } from "./hsdo.ts";
import { rampWeight } from "./ramp.ts";
import { validateSlot } from "./validate.ts";

const WEIGHT = { min: 1, max: 10, step: 1, intervalMs: 30_000 };
const NOW = Date.UTC(2025, 5, 1, 12);

/** A free item exactly as HSDO's server creates it (ServerModel's defaults, server.py run()). */
function placeholder(id: number): HsdoItem {
  return { BackendServerID: id, IPAddress: "none", ServerName: "none", ASG: "none", Weight: 0, BackendServerStatus: "disabled", LastWeightUpdate: "0-0-0 00:00:00.000000" };
}

/** An item HSDO's addServer filled and its ramp moved on. */
function enabled(id: number, n: number, weight = 10, asg = "web-a"): HsdoItem {
  return {
    BackendServerID: id,
    IPAddress: `10.1.0.${n}`,
    ServerName: `i-${n.toString(16).padStart(17, "0")}`,
    ASG: asg,
    Weight: weight,
    BackendServerStatus: "enabled",
    LastWeightUpdate: "2025-06-01 11:59:30.123456",
  };
}

const opts = { size: 12, weight: WEIGHT, now: NOW };

test("an HSDO table with 10 enabled servers maps to the same 10 slots; disabled and absent numbers are free", () => {
  const on = [1, 2, 4, 5, 6, 8, 9, 10, 11, 12];
  const items = [...on.map((id, i) => enabled(id, 20 + i, 1 + i)), placeholder(3), placeholder(7)].reverse();
  const plan = mapHsdoItems(items, opts);
  assert.deepEqual(plan.problems, []);
  assert.equal(plan.enabled, 10);
  assert.equal(plan.disabled, 2);
  assert.equal(plan.slots.length, 12);
  assert.deepEqual(
    plan.slots.filter((s) => s.state === "ready").map((s) => s.slot),
    on,
  );
  for (const [i, id] of on.entries()) {
    const s = plan.slots[id - 1]!;
    assert.equal(s.addr, `10.1.0.${20 + i}`);
    assert.equal(s.name, `i-${(20 + i).toString(16).padStart(17, "0")}`);
    assert.equal(s.group, "web-a");
    assert.equal(s.weight, 1 + i, `slot ${id} keeps HSDO's weight`);
    assert.equal(s.port, undefined);
    assert.ok(validateSlot({ ...s }, id).ok);
  }
  assert.equal(plan.slots[2]!.state, "free");
  assert.equal(plan.slots[6]!.state, "free");
});

test("the imported weight stays under hsdo's ramp, and the ramp carries on from it", () => {
  for (let w = 0; w <= WEIGHT.max; w++) {
    const plan = mapHsdoItems([enabled(1, 1, w)], { ...opts, size: 1 });
    const s = plan.slots[0]!;
    // Below min the ramp lifts it to min; from min up it is exactly kept.
    assert.equal(rampWeight(s.since!, NOW, WEIGHT), Math.max(w, WEIGHT.min), `weight ${w}`);
    assert.equal(s.weight, Math.max(w, WEIGHT.min));
    // One interval later the ramp has gone one step further, never back.
    assert.equal(rampWeight(s.since!, NOW + WEIGHT.intervalMs, WEIGHT), Math.min(WEIGHT.max, Math.max(w, WEIGHT.min) + 1));
  }
  // A coarser step rounds up, never down.
  const coarse = { min: 1, max: 20, step: 3, intervalMs: 1000 };
  const s = mapHsdoItems([enabled(1, 1, 5)], { ...opts, size: 1, weight: coarse }).slots[0]!;
  assert.ok(s.weight >= 5 && rampWeight(s.since!, NOW, coarse) === s.weight);
});

test("an item migrated from HSDO v2 (no ASG) maps without a group; ASG none too; port from the option", () => {
  const v2 = enabled(2, 2);
  delete v2.ASG;
  const plan = mapHsdoItems([v2, enabled(1, 1, 10, "none")], { ...opts, size: 2, port: 8080 });
  assert.deepEqual(plan.problems, []);
  assert.equal(plan.slots[1]!.group, undefined);
  assert.equal(plan.slots[0]!.group, undefined);
  assert.equal(plan.slots[1]!.port, 8080);
});

test("numbers read as HSDO's int() reads them: strings of integers pass", () => {
  const item = { ...enabled(3, 3), BackendServerID: "3", Weight: "7" };
  const plan = mapHsdoItems([item], { ...opts, size: 3 });
  assert.deepEqual(plan.problems, []);
  assert.equal(plan.slots[2]!.weight, 7);
});

function problemsOf(items: HsdoItem[], o: Partial<typeof opts> & { address?: { allowLoopback?: boolean } } = {}) {
  return Object.fromEntries(mapHsdoItems(items, { ...opts, ...o }).problems.map((p) => [p.item, p.problems.join(" | ")]));
}

test("every item hsdo cannot map is named with why", () => {
  const missing = enabled(1, 1);
  delete missing.Weight;
  const noId = enabled(2, 2);
  delete noId.BackendServerID;
  const p = problemsOf([
    missing,
    noId,
    enabled(13, 13),
    { ...enabled(4, 4), IPAddress: "10.0.0.300" },
    { ...enabled(5, 5), IPAddress: "169.254.169.254" },
    { ...enabled(6, 6), IPAddress: "127.0.0.5" },
    { ...enabled(7, 7), Weight: 11 },
    { ...enabled(8, 8), Weight: 300 },
    { ...enabled(9, 9), BackendServerStatus: "up" },
    { ...placeholder(10), IPAddress: "10.0.0.10" },
    { ...enabled(11, 11), IPAddress: "none" },
    { ...enabled(12, 12), ServerName: "i-1 ;shutdown" },
    { ...enabled(3, 3), BackendServerID: 0 },
  ]);
  assert.match(p["BackendServerID 1"]!, /Weight is missing/);
  assert.match(p["item #2 of the scan (BackendServerID undefined)"]!, /BackendServerID is missing/);
  assert.match(p["BackendServerID 13"]!, /above size 12.*at least 13/);
  assert.match(p["BackendServerID 4"]!, /not an IP address/);
  assert.match(p["BackendServerID 5"]!, /link-local.*never a target/);
  assert.match(p["BackendServerID 6"]!, /loopback/);
  assert.match(p["BackendServerID 7"]!, /above weight.max 10/);
  assert.match(p["BackendServerID 8"]!, /not a weight/);
  assert.match(p["BackendServerID 9"]!, /neither "enabled" nor "disabled"/);
  assert.match(p["BackendServerID 10"]!, /disabled but IPAddress is "10.0.0.10".*HSDO's client would serve it/);
  assert.match(p["BackendServerID 11"]!, /enabled but IPAddress is "none"/);
  assert.match(p["BackendServerID 12"]!, /ServerName .* is not a name/);
  assert.match(p["BackendServerID 0"]!, /not a slot number/);
  assert.equal(Object.keys(p).length, 13);
  // Loopback passes only with allowLoopback, as everywhere else.
  assert.deepEqual(problemsOf([{ ...enabled(6, 6), IPAddress: "127.0.0.5" }], { address: { allowLoopback: true } }), {});
});

test("one target in two slots (same ServerName, or same IPAddress) names both items; the same key twice is named", () => {
  const p = problemsOf([enabled(1, 1), { ...enabled(2, 2), ServerName: enabled(1, 1).ServerName }, enabled(3, 3), { ...enabled(4, 4), IPAddress: "10.1.0.3" }]);
  assert.match(p["BackendServerID 1"]!, /ServerName "i-0+1" is also in BackendServerID 2/);
  assert.match(p["BackendServerID 2"]!, /also in BackendServerID 1/);
  assert.match(p["BackendServerID 3"]!, /IPAddress "10.1.0.3" is also in BackendServerID 4/);
  assert.match(p["BackendServerID 4"]!, /also in BackendServerID 3/);
  const twice = problemsOf([enabled(5, 5), placeholder(5)]);
  assert.match(twice["BackendServerID 5"]!, /key of two items \(#1 and #2/);
  // Free placeholders all say "none": never a duplicate.
  assert.deepEqual(problemsOf([placeholder(1), placeholder(2), placeholder(3)]), {});
});

test("what HSDO's client sets: ready at the backend's port and the item's weight, maint for none", () => {
  const items = [enabled(1, 1, 4), placeholder(2), enabled(3, 3, 10, "web-b")];
  const m = hsdoClientSettings(items, { backends: [{ name: "be", baseName: "srv", serverPort: 80 }] });
  assert.deepEqual([...m.values()], [
    { backend: "be", server: "srv1", state: "ready", addr: "10.1.0.1", port: "80", weight: 4 },
    { backend: "be", server: "srv2", state: "maint" },
    { backend: "be", server: "srv3", state: "ready", addr: "10.1.0.3", port: "80", weight: 10 },
  ]);
  // CLIENT_DEDICATED_ASG: other ASGs (and free items, ASG "none") only in the fallback; the main backend's server is left alone.
  const d = hsdoClientSettings(items, {
    backends: [{ name: "be", baseName: "srv", serverPort: 80 }],
    dedicatedAsg: true,
    asgNames: ["web-a"],
    fallback: { name: "fb", baseName: "fsrv", serverPort: 80 },
  });
  assert.deepEqual([...d.keys()].sort(), ["be/srv1", "fb/fsrv2", "fb/fsrv3"]);
});

test("HSDO's command order: addr and port, weight, ready; maint alone", () => {
  const m = hsdoClientSettings([enabled(1, 1, 4), placeholder(2)], { backends: [{ name: "be", baseName: "srv", serverPort: "8080" }] });
  assert.deepEqual([...m.values()].flatMap(hsdoCommands), [
    "set server be/srv1 addr 10.1.0.1 port 8080",
    "set server be/srv1 weight 4",
    "set server be/srv1 state ready",
    "set server be/srv2 state maint",
  ]);
});
