import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SourceError } from "@hsdo/core";
import { waitFor } from "@hsdo/testkit";
import { StaticSource } from "./static.ts";
import { parseStaticTargets } from "./static-parse.ts";

async function tempFile(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "hsdo-static-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "targets.yaml");
  await writeFile(file, text);
  return file;
}

const TWO = `targets:
  - { name: web-1, addr: 10.0.0.1, port: 8080, group: web, az: eu-west-1a }
  - name: web-2
    addr: "fd00::2"
    state: drain
`;

test("parses targets in file order, state drain = leaving, port optional", async (t) => {
  const source = new StaticSource(await tempFile(t, TWO));
  t.after(() => source.close());
  assert.deepEqual(await source.list(), [
    { id: "web-1", addr: "10.0.0.1", port: 8080, group: "web", az: "eu-west-1a", launchedAt: 0, health: "ready" },
    { id: "web-2", addr: "fd00::2", group: "", az: "", launchedAt: 1, health: "leaving" },
  ]);
  assert.deepEqual(parseStaticTargets("targets: []\n"), { ok: true, targets: [] });
});

test("a change on disk is picked up, whether written in place or renamed over", async (t) => {
  const file = await tempFile(t, TWO);
  const source = new StaticSource(file);
  t.after(() => source.close());
  assert.equal((await source.list()).length, 2);

  await writeFile(file, `targets:\n  - { name: web-3, addr: 10.0.0.3 }\n`);
  await waitFor("the in-place write", async () => (await source.list())[0]?.id === "web-3");

  const tmp = `${file}.tmp`;
  await writeFile(tmp, `targets:\n  - { name: web-4, addr: 10.0.0.4 }\n  - { name: web-5, addr: 10.0.0.5 }\n`);
  await rename(tmp, file);
  const after = await waitFor("the renamed file", async () => {
    const list = await source.list();
    return list.length === 2 ? list : undefined;
  });
  assert.deepEqual(after.map((x) => x.id), ["web-4", "web-5"]);
});

test("a bad file throws SourceError naming the file, the index and the key, every time until fixed", async (t) => {
  const file = await tempFile(t, TWO);
  const source = new StaticSource(file);
  t.after(() => source.close());
  await source.list();
  await writeFile(
    file,
    `targets:
  - { name: web-1, addr: 10.0.0.1, port: 70000 }
  - { name: web-1, addr: web.example.com, colour: blue }
  - { name: "bad name", addr: 10.0.0.3, state: gone }
`,
  );
  const error = await waitFor("the bad file to be read", async () => {
    try {
      await source.list();
      return undefined;
    } catch (err) {
      return err instanceof SourceError ? err : undefined;
    }
  });
  assert.ok(error.message.startsWith(`static: ${file}: `));
  for (const part of [
    "targets[0].port: 70000 is not a port (expected 1..65535)",
    'targets[1].colour: unknown key',
    'targets[1].name: "web-1" is already the name of targets[0]',
    'targets[1].addr: "web.example.com" is not an IP address',
    'targets[2].name: "bad name" is not a name',
    'targets[2].state: "gone" is not a state (expected ready or drain)',
  ]) {
    assert.ok(error.message.includes(part), `missing «${part}» in: ${error.message}`);
  }
  await assert.rejects(source.list(), SourceError, "still refused on the next call");

  await writeFile(file, "targets:\n  - { name: a, addr: 10.0.0.1\n");
  await waitFor("a YAML syntax error", async () => {
    try {
      await source.list();
      return false;
    } catch (err) {
      return err instanceof SourceError && /YAML: /.test(err.message);
    }
  });
  await writeFile(file, "");
  await waitFor("an empty file refused", async () => {
    try {
      await source.list();
      return false;
    } catch (err) {
      return err instanceof SourceError && /the file is empty/.test(err.message);
    }
  });
  await writeFile(file, TWO);
  await waitFor("the fixed file", async () => (await source.list()).length === 2);
});

test("a missing file is a SourceError naming it", async (t) => {
  const file = await tempFile(t, TWO);
  await rm(file);
  const source = new StaticSource(file);
  t.after(() => source.close());
  await assert.rejects(source.list(), (err: unknown) => err instanceof SourceError && err.message.includes(file) && /ENOENT/.test(err.message));
});

test("conf/targets.yaml, the documented sample, parses: two ready targets and one draining, in file order", async () => {
  const { readFile } = await import("node:fs/promises");
  const text = await readFile(new URL("../../../../conf/targets.yaml", import.meta.url), "utf8");
  const r = parseStaticTargets(text);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(
    r.targets.map((x) => [x.id, x.addr, x.port, x.group, x.az, x.health]),
    [
      ["web-1", "10.0.0.1", 8080, "web", "eu-west-1a", "ready"],
      ["web-2", "10.0.0.2", 8080, "web", "eu-west-1b", "ready"],
      ["web-3", "10.0.0.3", 8080, "", "", "leaving"],
    ],
  );
});
