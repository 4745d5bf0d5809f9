#!/usr/bin/env node
// `npm test`: preflight (HAProxy present, promtool when a test runs it), type check, then every test file
// through node's own runner. Each file runs in its own process, so a test
// that starts HAProxy or dynalite cannot leak them into another file.
//
//   node scripts/test.mjs [--no-typecheck] [--haproxy <bin>] [--haproxy-only] [filter...]
//
// --haproxy <bin>  the HAProxy the tests run (sets HSDO_TEST_HAPROXY; default
//                  $HSDO_TEST_HAPROXY, else `haproxy` on PATH)
// --haproxy-only   only the files that run HAProxy (start it, or `haproxy -c`)
//
// `npm run test:haproxy -- --haproxy /var/cache/hsdo-ci/haproxy-3.0/haproxy`
// is CI's second pass, on HAProxy 3.0 (built by scripts/haproxy30.sh).
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { availableParallelism } from "node:os";
import { HAPROXY_ENV, ensureHaproxy, haproxyBinary } from "./haproxy-preflight.mjs";
import { ensurePromtool } from "./promtool-preflight.mjs";

// The SDK's Node-version notice would repeat in every test file's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const haproxyAt = args.indexOf("--haproxy");
if (haproxyAt >= 0) {
  const bin = args[haproxyAt + 1];
  if (!bin || bin.startsWith("--")) {
    console.error("--haproxy needs the HAProxy binary, e.g. --haproxy /var/cache/hsdo-ci/haproxy-3.0/haproxy");
    process.exit(2);
  }
  // The tests' processes inherit it: packages/testkit/src/haproxy.ts and the `haproxy -c` checks read it.
  process.env[HAPROXY_ENV] = bin;
  args.splice(haproxyAt, 2);
}
const haproxyOnly = args.includes("--haproxy-only");

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { stdio: "inherit", cwd: root });
  if (r.error) return { status: 127, error: r.error };
  return r;
}

// HAProxy is a real part of the test bed: never skip silently when it is missing.
const version = ensureHaproxy((m) => console.log(`preflight: ${m}`));
console.log(`preflight: ${version}${haproxyBinary() === "haproxy" ? " (haproxy on PATH)" : ""}`);

if (!args.includes("--no-typecheck")) {
  console.log("typecheck: tsc --noEmit");
  const tsc = run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json", "--noEmit"]);
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith(".test.ts")) out.push(relative(root, p));
  }
  return out;
}

const filters = args.filter((a) => !a.startsWith("--"));
let files = [...walk(join(root, "packages"), []), ...walk(join(root, "test"), [])].sort();
if (filters.length > 0) files = files.filter((f) => filters.some((x) => f.includes(x)));
// A file runs HAProxy when it starts one (packages/testkit/src/haproxy.ts) or runs the binary itself.
const runsHaproxy = (f) => f.endsWith(".haproxy.test.ts") || /\bstartHaproxy\(|\bhaproxyBinary\(/.test(readFileSync(join(root, f), "utf8"));
if (haproxyOnly) files = files.filter(runsHaproxy);
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}

// promtool (Debian's prometheus package) checks the alert rules: installed here when a test needs it, never skipped.
if (files.some((f) => /\bpromtool\b/.test(readFileSync(join(root, f), "utf8")))) console.log(`preflight: ${ensurePromtool((m) => console.log(`preflight: ${m}`))}`);

console.log(`tests: ${files.length} files${haproxyOnly ? " (those that run HAProxy)" : ""}`);
const concurrency = Math.max(2, Math.min(4, availableParallelism()));
const r = run(process.execPath, [
  "--import",
  "tsx",
  "--test",
  `--test-concurrency=${concurrency}`,
  "--test-timeout=240000",
  "--test-reporter=spec",
  ...files,
]);
process.exit(r.status ?? 1);
