// HAProxy is a real part of the tests and the demo: find it, or install
// Debian's package when running as root, or say the exact command to run.
//
// Which HAProxy: $HSDO_TEST_HAPROXY (a path or a command name), else
// `haproxy` on PATH. CI runs the suite on Debian 12's 2.6 and the
// HAProxy-facing tests again on 3.0 (scripts/haproxy30.sh builds it).
import { spawnSync } from "node:child_process";

export const HAPROXY_ENV = "HSDO_TEST_HAPROXY";

/** The HAProxy binary the test bed runs. */
export function haproxyBinary() {
  return process.env[HAPROXY_ENV] || "haproxy";
}

/** `-v`'s first line, its version (as `show info` prints it: "2.6.12-1+deb12u2") and numbers, or null when the binary does not run. */
export function haproxyVersion(bin = haproxyBinary()) {
  const r = spawnSync(bin, ["-v"], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const line = r.stdout.split("\n")[0] ?? "";
  const m = /version ((\d+)\.(\d+)\S*)/.exec(line);
  return { line, version: m?.[1] ?? "", major: m ? Number(m[2]) : NaN, minor: m ? Number(m[3]) : NaN };
}

/** Whether the test bed's HAProxy is at least major.minor. */
export function haproxyAtLeast(major, minor, bin = haproxyBinary()) {
  const v = haproxyVersion(bin);
  return v !== null && (v.major > major || (v.major === major && v.minor >= minor));
}

/** Returns HAProxy's version line (with the binary when not the default); exits the process with a clear message when it cannot be had. */
export function ensureHaproxy(log = console.log) {
  const bin = haproxyBinary();
  const describe = (v) => (bin === "haproxy" ? v.line : `${v.line} (${bin}, from ${HAPROXY_ENV})`);
  let v = haproxyVersion(bin);
  if (v) return describe(v);
  if (bin !== "haproxy") {
    console.error(`${HAPROXY_ENV}=${bin} does not run (${bin} -v failed).\n  build HAProxy 3.0 with: scripts/haproxy30.sh`);
    process.exit(1);
  }
  if (process.getuid?.() === 0) {
    log("haproxy not found: installing Debian's package (apt-get install -y haproxy)");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let r = spawnSync("apt-get", ["install", "-y", "haproxy"], { stdio: "inherit", env });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update"], { stdio: "inherit", env });
      r = spawnSync("apt-get", ["install", "-y", "haproxy"], { stdio: "inherit", env });
    }
    v = haproxyVersion(bin);
    if (v) return describe(v);
  }
  console.error("haproxy is required and is not installed.\n  run: sudo apt-get install -y haproxy");
  process.exit(1);
}
