#!/usr/bin/env node
// The hsdo command. Sources are TypeScript run through tsx's loader: one
// codebase, no build step between a checkout and a running process.
import { register } from "tsx/esm/api";

// The SDK's own Node-version notice is a multi-line stderr print that breaks
// one-JSON-line-per-event logs; hsdo logs it as one event instead (run.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
// `hsdo ... | head` closes stdout early: that is the reader's choice, not a crash.
process.stdout.on("error", (err) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv.slice(2));
