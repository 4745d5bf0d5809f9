import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { haproxyAtLeast, haproxyBinary, haproxyVersion, backendOf } from "@hsdo/testkit";
import { haproxyConfigLines, parseHaproxyVersion, templateLine } from "./haproxy-config.ts";

const config = {
  size: 10,
  client: {
    socket: "/run/haproxy/admin.sock",
    backends: [
      backendOf("be_dedicated", "srv", { select: "dedicated", port: 8080, pool: "vod" }),
      backendOf("be_fallback", "fb", { select: "fallback", pool: "vod" }),
      backendOf("be_api", "api", { pool: "api" }),
    ],
  },
};

test("server-template lines: declared by a name that never resolves, address from the state file or parked where nothing answers, disabled, checked", () => {
  const line = "server-template srv 1-10 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check";
  assert.equal(templateLine(backendOf("b", "srv", { port: 8080 }), 10), line);
  assert.equal(templateLine(backendOf("b", "x"), 3), "server-template x 1-3 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check");
});

test("haproxyConfigLines prints every backend, hashing suggestions and the fallback rule", () => {
  const text = haproxyConfigLines(config);
  const live = text.split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
  assert.deepEqual(live, [
    "backend be_dedicated",
    "    server-template srv 1-10 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check",
    "backend be_fallback",
    "    server-template fb 1-10 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check",
    "backend be_api",
    "    server-template api 1-10 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check",
  ]);
  assert.match(text, /^# {4} stats socket \/run\/haproxy\/admin\.sock mode 660 level admin group haproxy$/m);
  assert.doesNotMatch(text, /server-state-file/, "no state file configured: no line for one");
  const withState = haproxyConfigLines({ ...config, client: { ...config.client, serverStateFile: "/var/lib/hsdo/haproxy-server-state" } });
  assert.match(withState, /^# {5}server-state-file \/var\/lib\/hsdo\/haproxy-server-state$/m);
  assert.match(withState, /^# {5}load-server-state-from-file global$/m);
  assert.match(text, /^ {4}# {3}balance uri\n {4}# {3}hash-type consistent$/m);
  assert.match(text, /^# frontend fe_vod\n# {5}bind :80\n.*\n# {5}use_backend be_fallback if \{ nbsrv\(be_dedicated\) eq 0 \}\n# {5}default_backend be_dedicated$/m);
  assert.match(text, /^# frontend fe_api\n# {5}bind :80\n# {5}default_backend be_api$/m);
});

test("the hash-key advice fits the HAProxy version: offered from 3.0, withheld on 2.x, marked 3.0+ when unknown", () => {
  const hashKey = /^ {4}# {3}default-server hash-key addr-port$/gm;
  const on30 = haproxyConfigLines({ ...config, haproxyVersion: "3.0.11-9e587df" });
  assert.equal(on30.match(hashKey)?.length, 3);
  assert.match(on30, /^ {4}# HAProxy 3\.0 can hash on the address/m);
  assert.equal(haproxyConfigLines({ ...config, haproxyVersion: "3.2.4" }).match(hashKey)?.length, 3);
  const on26 = haproxyConfigLines({ ...config, haproxyVersion: "2.6.12-1+deb12u2" });
  assert.equal(on26.match(hashKey), null);
  assert.equal(on26.match(/hash-key/g)?.length, 3);
  assert.match(on26, /^ {4}# \(HAProxy 2\.6 hashes on server ids only; hash-key addr-port needs 3\.0\+\)$/m);
  for (const unknown of [undefined, "", "unknown"]) {
    const text = haproxyConfigLines({ ...config, haproxyVersion: unknown });
    assert.equal(text.match(hashKey)?.length, 3, String(unknown));
    assert.equal(text.match(/needs HAProxy 3\.0\+/g)?.length, 3, String(unknown));
  }
  // everything else is the same whatever the version
  const strip = (t: string) => t.split("\n").filter((l) => !/hash-key|hash on|hashes on|version unknown/.test(l));
  assert.deepEqual(strip(on26), strip(on30));
  assert.deepEqual(parseHaproxyVersion("3.0.11-9e587df"), { major: 3, minor: 0 });
  assert.deepEqual(parseHaproxyVersion("2.6.12-1+deb12u2"), { major: 2, minor: 6 });
  assert.equal(parseHaproxyVersion("unknown"), undefined);
});

test("the printed sections are a valid HAProxy configuration, with the suggestions and the frontend uncommented", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-cfg-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // hash-key is HAProxy 3.0+: taken up only when the test bed runs 3.0 or later
  const taken = ["balance uri", "hash-type consistent", "hash-balance-factor 150", ...(haproxyAtLeast(3, 0) ? ["default-server hash-key addr-port"] : [])];
  const text = haproxyConfigLines({ ...config, client: { ...config.client, serverStateFile: join(dir, "state") }, haproxyVersion: haproxyVersion()?.version }).replace(/^ {4}# {3}(.*)$/gm, (line, s: string) => (taken.includes(s) ? `    ${s}` : line));
  if (haproxyAtLeast(3, 0)) assert.equal(text.match(/^ {4}default-server hash-key addr-port$/gm)?.length, 3);
  assert.equal(text.match(/^ {4}hash-type consistent$/gm)?.length, 3);
  const frontend = text
    .split("\n")
    .filter((l) => /^# (frontend|\s{4}(bind|use_backend|default_backend))/.test(l))
    .map((l) => l.slice(2))
    .filter((l) => !l.startsWith("frontend fe_api") && !l.includes("be_api"))
    .join("\n");
  assert.match(frontend, /use_backend be_fallback/);
  const file = join(dir, "haproxy.cfg");
  writeFileSync(
    file,
    [
      "global",
      `    server-state-file ${join(dir, "state")}`,
      "defaults",
      "    mode http",
      "    load-server-state-from-file global",
      "    timeout connect 1s",
      "    timeout client 5s",
      "    timeout server 5s",
      "",
      text,
      frontend,
      "",
    ].join("\n"),
  );
  // -V: since 3.0 "Configuration file is valid" is printed in verbose mode only
  const check = spawnSync(haproxyBinary(), ["-c", "-V", "-f", file], { encoding: "utf8" });
  assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  assert.match(check.stdout + check.stderr, /Configuration file is valid/);
});
