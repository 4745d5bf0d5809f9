import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { haproxyConfigLines, templateLine } from "./haproxy-config.ts";
import { backendOf } from "./testkit.ts";

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
  assert.match(text, /^# {4} stats socket \/run\/haproxy\/admin\.sock mode 660 level admin$/m);
  assert.doesNotMatch(text, /server-state-file/, "no state file configured: no line for one");
  const withState = haproxyConfigLines({ ...config, client: { ...config.client, serverStateFile: "/var/lib/hsdo/haproxy-server-state" } });
  assert.match(withState, /^# {5}server-state-file \/var\/lib\/hsdo\/haproxy-server-state$/m);
  assert.match(withState, /^# {5}load-server-state-from-file global$/m);
  assert.match(text, /^ {4}# {3}balance uri\n {4}# {3}hash-type consistent$/m);
  assert.match(text, /^# frontend fe_vod\n# {5}bind :80\n.*\n# {5}use_backend be_fallback if \{ nbsrv\(be_dedicated\) eq 0 \}\n# {5}default_backend be_dedicated$/m);
  assert.match(text, /^# frontend fe_api\n# {5}bind :80\n# {5}default_backend be_api$/m);
});

test("the printed sections are a valid HAProxy configuration, with the suggestions and the frontend uncommented", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-cfg-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // hash-key is HAProxy 3.0+, the tests run 2.6: the other suggestions are taken up
  const text = haproxyConfigLines({ ...config, client: { ...config.client, serverStateFile: join(dir, "state") } }).replace(/^ {4}# {3}(balance uri|hash-type consistent|hash-balance-factor 150)$/gm, "    $1");
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
  const check = spawnSync("haproxy", ["-c", "-f", file], { encoding: "utf8" });
  assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  assert.match(check.stdout + check.stderr, /Configuration file is valid/);
});
