#!/usr/bin/env node
// The hsdo command in a checkout: the TypeScript sources through tsx's
// loader, no build step between an edit and a run. The release tarball's
// bin runs the compiled bundle instead (scripts/build.mjs), without tsx.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
