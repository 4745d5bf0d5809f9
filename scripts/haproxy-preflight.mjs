// HAProxy is a real part of the tests and the demo: find it, or install
// Debian's package when running as root, or say the exact command to run.
import { spawnSync } from "node:child_process";

function version() {
  const r = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.split("\n")[0] : null;
}

/** Returns HAProxy's version line; exits the process with a clear message when it cannot be had. */
export function ensureHaproxy(log = console.log) {
  let v = version();
  if (v) return v;
  if (process.getuid?.() === 0) {
    log("haproxy not found: installing Debian's package (apt-get install -y haproxy)");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let r = spawnSync("apt-get", ["install", "-y", "haproxy"], { stdio: "inherit", env });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update"], { stdio: "inherit", env });
      r = spawnSync("apt-get", ["install", "-y", "haproxy"], { stdio: "inherit", env });
    }
    v = version();
    if (v) return v;
  }
  console.error("haproxy is required and is not installed.\n  run: sudo apt-get install -y haproxy");
  process.exit(1);
}
