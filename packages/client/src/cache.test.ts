import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cacheFile, loadSnapshot, saveSnapshot } from "./cache.ts";
import { readySlot, snapshotOf } from "@hsdo/testkit";

const at = (pool: string, table = "hsdo", endpoint = "http://127.0.0.1:8000", region = "eu-west-1") => ({ endpoint, region, table, pool });

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-cache-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("a saved snapshot loads back equal; saving again replaces it and leaves no temp file", async (t) => {
  const dir = join(tempDir(t), "nested", "cache");
  const snap = snapshotOf("vod", 3, [readySlot(1, "10.0.0.1", { since: 5, generation: 2, epoch: 1 }), readySlot(3, "2001:db8::3", { state: "drain", drainUntil: 9 })]);
  assert.deepEqual(await loadSnapshot(dir, at("vod")), { status: "missing", file: cacheFile(dir, at("vod")) });
  const file = await saveSnapshot(dir, at("vod"), snap);
  assert.match(file, /hsdo-snapshot-vod-[0-9a-f]{12}\.json$/);
  assert.deepEqual(await loadSnapshot(dir, at("vod")), { status: "loaded", file, snapshot: snap });

  const next = { ...snap, head: { ...snap.head, generation: 2 } };
  await saveSnapshot(dir, at("vod"), next);
  const loaded = await loadSnapshot(dir, at("vod"));
  assert.equal(loaded.status === "loaded" && loaded.snapshot.head.generation, 2);
  assert.deepEqual(readdirSync(dir), [file.slice(dir.length + 1)]);
  // pools do not share a file
  assert.equal((await loadSnapshot(dir, at("other"))).status, "missing");
});

test("a corrupt file is reported with the reason and never throws", async (t) => {
  const dir = tempDir(t);
  const good = JSON.parse(JSON.stringify({ format: 2, origin: at("p"), snapshot: snapshotOf("p", 2, [readySlot(1, "10.0.0.1")]) }));
  const cases: [unknown, RegExp][] = [
    ["{not json", /is corrupt, ignored: .*JSON/],
    [[], /not a JSON object/],
    [{ ...good, format: 1 }, /format 1 is not 2/],
    [{ ...good, snapshot: { ...good.snapshot, pool: "q" } }, /holds pool "q", not "p"/],
    [{ ...good, snapshot: { ...good.snapshot, head: { ...good.snapshot.head, size: "2" } } }, /head\.size "2" is not a whole number/],
    [{ ...good, snapshot: { ...good.snapshot, slots: good.snapshot.slots.slice(1) } }, /1 slots where head\.size is 2/],
    [{ ...good, snapshot: { ...good.snapshot, invalid: [{ slot: "x" }] } }, /invalid entry .* is not \{slot, problems\}/],
  ];
  for (const [content, expected] of cases) {
    writeFileSync(cacheFile(dir, at("p")), typeof content === "string" ? content : JSON.stringify(content));
    const got = await loadSnapshot(dir, at("p"));
    assert.equal(got.status, "corrupt", JSON.stringify(content).slice(0, 80));
    assert.match(got.status === "corrupt" ? got.error : "", expected);
  }
  rmSync(cacheFile(dir, at("p")));
  writeFileSync(join(dir, "x"), "");
  const unreadable = await loadSnapshot(join(dir, "x"), at("p"));
  assert.equal(unreadable.status, "corrupt");
});

test("every slot read back is validated: a tampered slot is free and listed invalid", async (t) => {
  const dir = tempDir(t);
  const snap = snapshotOf("p", 3, [readySlot(1, "10.0.0.1"), readySlot(2, "10.0.0.2"), readySlot(3, "10.0.0.3")], []);
  const file = await saveSnapshot(dir, at("p"), snap);
  const data = JSON.parse(readFileSync(file, "utf8"));
  data.snapshot.slots[1].addr = "10.0.0.2; shutdown sessions";
  data.snapshot.slots[2].slot = 7;
  writeFileSync(file, JSON.stringify(data));
  const got = await loadSnapshot(dir, at("p"));
  assert.equal(got.status, "loaded");
  if (got.status !== "loaded") return;
  assert.deepEqual(got.snapshot.slots.map((s) => s.state), ["ready", "free", "free"]);
  assert.deepEqual(got.snapshot.invalid.map((i) => i.slot), [2, 3]);
  assert.match(got.snapshot.invalid[0]?.problems.join() ?? "", /addr "10\.0\.0\.2; shutdown sessions" is not an IP address/);
  assert.match(got.snapshot.invalid[1]?.problems.join() ?? "", /slot 7 found where slot 3 was expected/);
});

test("a pool name that is not a file name is refused", async (t) => {
  const dir = tempDir(t);
  assert.throws(() => cacheFile(dir, at("../etc/passwd")), /not a name usable as a cache file name/);
  await assert.rejects(saveSnapshot(dir, at("a/b"), snapshotOf("a/b", 1, [])), /not a name usable/);
});

test("a snapshot is restored only into the endpoint, region, table and pool it was read from", async (t) => {
  const dir = tempDir(t);
  const snap = snapshotOf("p", 1, [readySlot(1, "10.0.0.1")]);
  const file = await saveSnapshot(dir, at("p"), snap);
  assert.equal((await loadSnapshot(dir, at("p"))).status, "loaded");
  // Another table, endpoint or region with the same pool name has its own file: nothing to restore.
  for (const other of [at("p", "other-table"), at("p", "hsdo", "http://127.0.0.1:9000"), at("p", "hsdo", "http://127.0.0.1:8000", "us-east-1")]) {
    assert.notEqual(cacheFile(dir, other), file);
    assert.equal((await loadSnapshot(dir, other)).status, "missing");
  }
  // Even a file copied under another origin's name is refused by what it records.
  const other = at("p", "other-table");
  writeFileSync(cacheFile(dir, other), readFileSync(file));
  const got = await loadSnapshot(dir, other);
  assert.equal(got.status, "foreign");
  assert.match(got.status === "foreign" ? got.error : "", /was written for table "hsdo", this client reads "other-table": not restored/);
  await assert.rejects(saveSnapshot(dir, at("q"), snap), /snapshot of pool p saved as pool q/);
});
