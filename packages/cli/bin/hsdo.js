#!/usr/bin/env node
// The hsdo command. Sources are TypeScript run through tsx's loader: one
// codebase, no build step between a checkout and a running process.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv.slice(2));
