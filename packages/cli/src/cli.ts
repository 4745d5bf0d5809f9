// The process behind the `hsdo` command: bin/hsdo.js imports it through tsx
// in a checkout, and it is the entry point of the compiled bundle
// (scripts/build.mjs) that the release tarball's bin runs.

// The SDK's own Node-version notice is a multi-line stderr print that breaks
// one-JSON-line-per-event logs; hsdo logs it as one event instead (run.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
// `hsdo ... | head` closes stdout early: that is the reader's choice, not a crash.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
export {};
