// promtool checks conf/prometheus/alerts.yaml (test/alerts.test.ts): find it,
// or install Debian's prometheus package when running as root (as
// haproxy-preflight.mjs does for HAProxy), or say the exact command. A test
// that needs a missing tool fails; it never passes by skipping.
import { spawnSync } from "node:child_process";

/** promtool's version line, or null when it does not run. */
export function promtoolVersion() {
  const r = spawnSync("promtool", ["--version"], { encoding: "utf8" });
  if (r.status !== 0) return null;
  return (r.stdout || r.stderr).split("\n")[0] ?? "";
}

/** Returns promtool's version line; exits the process with a clear message when it cannot be had. */
export function ensurePromtool(log = console.log) {
  let v = promtoolVersion();
  if (v) return v;
  if (process.getuid?.() === 0) {
    log("promtool not found: installing Debian's package (apt-get install -y --no-install-recommends prometheus)");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const args = ["install", "-y", "--no-install-recommends", "prometheus"];
    let r = spawnSync("apt-get", args, { stdio: "inherit", env });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update"], { stdio: "inherit", env });
      r = spawnSync("apt-get", args, { stdio: "inherit", env });
    }
    v = promtoolVersion();
    if (v) return v;
  }
  console.error("promtool is required (it checks conf/prometheus/alerts.yaml) and is not installed.\n  run: sudo apt-get install -y --no-install-recommends prometheus");
  process.exit(1);
}
