#!/usr/bin/env node
// `npm run build`: the release package, staged in dist/package.
// `npm run pack` (this script with --pack) also runs `npm pack` in
// dist/package: dist/hsdo-<version>.tgz, what `npm install -g` installs.
//
// Why esbuild bundling rather than tsc per package: the workspace packages
// export their .ts sources (package.json "exports"), and the sources import
// each other with .ts extensions (allowImportingTsExtensions), which tsc can
// only emit since 5.7 with rewriteRelativeImportExtensions, and then still
// leaves five packages of "exports" to rewrite and publish. One bundle of
// packages/cli's entry with the @hsdo/* packages inlined needs none of that:
// one package on npm, the third-party packages external (installed from the
// registry as its dependencies, so security fixes need no rebuild of hsdo),
// and code splitting keeps main.ts's lazy `import()` of each command a lazy
// chunk, so `hsdo --help` and `hsdo config` never load the AWS SDK (checked
// below, on the build's own module graph). tsc keeps checking the types.
//
//   dist/package/
//     package.json   generated: name, version (root package.json), bin,
//                    engines, dependencies computed from the workspace packages
//     bin/hsdo.js    the command (imports ../lib/cli.js)
//     lib/           the bundle: cli.js, a chunk per command, shared chunks
//     conf/          the files an operator installs (systemd, Prometheus,
//                    Grafana, sample hsdo.yaml and haproxy.cfg)
//     README.md
//
//   node scripts/build.mjs [--pack] [--out <dir>]   (default dist/package)
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
// --out <dir>: stage elsewhere (the release test builds into a temporary directory, leaving dist/ alone).
const outAt = process.argv.indexOf("--out");
const out = outAt > 0 && process.argv[outAt + 1] ? resolve(process.argv[outAt + 1]) : join(root, "dist/package");
const readJson = (p) => JSON.parse(readFileSync(join(root, p), "utf8"));

/** The conf/ files useful to an operator (demo and compose files are for the repository). */
export const CONF_FILES = [
  "conf/hsdo.yaml",
  "conf/haproxy.cfg",
  "conf/targets.yaml",
  "conf/grafana-dashboard.json",
  "conf/prometheus/alerts.yaml",
  "conf/systemd/hsdo-server.service",
  "conf/systemd/hsdo-client.service",
  "conf/systemd/hsdo.default",
  "conf/systemd/hsdo.sysusers",
];

/**
 * The tarball's dependencies: the union of the workspace packages'
 * dependencies (optionalDependencies stay optional), without the @hsdo/*
 * packages the bundle inlines. Two packages asking for one dependency must
 * ask for the same range: there is one node_modules in the tarball's install.
 */
export function productionDependencies(rootPkg = readJson("package.json")) {
  const dependencies = {};
  const optionalDependencies = {};
  const seen = new Map();
  for (const ws of rootPkg.workspaces) {
    const pkg = readJson(join(ws, "package.json"));
    for (const [field, into] of [
      ["dependencies", dependencies],
      ["optionalDependencies", optionalDependencies],
    ]) {
      for (const [name, range] of Object.entries(pkg[field] ?? {})) {
        if (name.startsWith("@hsdo/")) continue;
        const before = seen.get(name);
        if (before && before.range !== range) {
          throw new Error(`${name}: ${before.ws} asks for ${before.range}, ${ws} for ${range}; make them one range`);
        }
        seen.set(name, { ws, range });
        into[name] = range;
      }
    }
  }
  for (const name of Object.keys(optionalDependencies)) delete dependencies[name];
  const sort = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  return { dependencies: sort(dependencies), optionalDependencies: sort(optionalDependencies) };
}

/** The commit being built: `git rev-parse`, "+dirty" when the tree has changes, "unknown" outside a checkout (or $HSDO_BUILD_COMMIT, e.g. in CI). */
function commit() {
  if (process.env.HSDO_BUILD_COMMIT) return process.env.HSDO_BUILD_COMMIT;
  const git = (...args) => spawnSync("git", args, { cwd: root, encoding: "utf8" });
  const head = git("rev-parse", "--short=12", "HEAD");
  if (head.status !== 0) return "unknown";
  const dirty = git("status", "--porcelain", "--untracked-files=no").stdout.trim() !== "";
  return `${head.stdout.trim()}${dirty ? "+dirty" : ""}`;
}

/** Packages a module of the bundle imports, from the metafile (static imports only when `staticOnly`). */
function reachable(metafile, from, staticOnly) {
  const outputs = metafile.outputs;
  const seen = new Set();
  const packages = new Set();
  const stack = [from];
  while (stack.length) {
    const file = stack.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    for (const imp of outputs[file]?.imports ?? []) {
      if (staticOnly && imp.kind === "dynamic-import") continue;
      if (imp.external) packages.add(imp.path);
      else stack.push(imp.path);
    }
  }
  return packages;
}

function packageName(spec) {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

export async function buildPackage({ log = console.log } = {}) {
  const rootPkg = readJson("package.json");
  const cliPkg = readJson("packages/cli/package.json");
  const { dependencies, optionalDependencies } = productionDependencies(rootPkg);
  const thirdParty = [...Object.keys(dependencies), ...Object.keys(optionalDependencies)];
  const info = { version: rootPkg.version, commit: commit() };

  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "bin"), { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { cli: "packages/cli/src/cli.ts" },
    outdir: join(out, "lib"),
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // The @hsdo/* packages resolve through node_modules' workspace links and are inlined; the rest is installed beside hsdo.
    external: thirdParty.flatMap((name) => [name, `${name}/*`]),
    chunkNames: "chunks/[name]-[hash]",
    define: { HSDO_BUILD: JSON.stringify(info) },
    sourcemap: "linked",
    sourcesContent: false,
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
  });

  // Every package the bundle imports is a declared dependency: a missing one would only fail on an operator's machine.
  const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith(".js"));
  const builtins = new Set(builtinModules);
  for (const [file, o] of outputs) {
    for (const imp of o.imports) {
      if (!imp.external || imp.path.startsWith("node:") || builtins.has(imp.path)) continue;
      if (!thirdParty.includes(packageName(imp.path))) {
        throw new Error(`${file} imports ${imp.path}, which no workspace package lists in its dependencies`);
      }
    }
  }
  // `hsdo --help` and `hsdo config` load the entry and the config command's chunk, and what they import statically: no AWS SDK there.
  const entry = outputs.find(([, o]) => o.entryPoint === "packages/cli/src/cli.ts")?.[0];
  const config = outputs.find(([, o]) => o.entryPoint === "packages/cli/src/commands/config.ts")?.[0];
  if (!entry || !config) throw new Error("the bundle has no entry or no chunk for the config command (is main.ts still importing commands lazily?)");
  for (const from of [entry, config]) {
    const aws = [...reachable(result.metafile, from, true)].filter((p) => p.startsWith("@aws-sdk/"));
    if (aws.length) throw new Error(`${relative(root, from)} loads ${aws.join(", ")} at start-up: keep the AWS SDK behind the commands' lazy imports`);
  }

  writeFileSync(
    join(out, "bin/hsdo.js"),
    [
      "#!/usr/bin/env node",
      "// hsdo, compiled (scripts/build.mjs). Stack traces point into the TypeScript sources through lib/*.map.",
      "process.setSourceMapsEnabled(true);",
      'await import("../lib/cli.js");',
      "",
    ].join("\n"),
  );
  chmodSync(join(out, "bin/hsdo.js"), 0o755);
  for (const f of [...CONF_FILES, "README.md"]) cpSync(join(root, f), join(out, f));

  const pkg = {
    name: rootPkg.name,
    version: rootPkg.version,
    description: rootPkg.description,
    license: rootPkg.license,
    type: "module",
    bin: { hsdo: "bin/hsdo.js" },
    engines: rootPkg.engines,
    files: ["bin/", "lib/", "conf/", "README.md"],
    dependencies,
    optionalDependencies,
    hsdo: { commit: info.commit },
  };
  if (cliPkg.engines && JSON.stringify(cliPkg.engines) !== JSON.stringify(rootPkg.engines)) {
    throw new Error(`packages/cli engines ${JSON.stringify(cliPkg.engines)} differ from the root's ${JSON.stringify(rootPkg.engines)}`);
  }
  writeFileSync(join(out, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  log(`build: dist/package (hsdo ${info.version}, commit ${info.commit}; ${outputs.length} modules; ${thirdParty.length} dependencies)`);
  return { dir: out, pkg };
}

/** `npm pack` in dist/package (its own directory, so no script of the repository's package.json runs); returns the tarball's path. */
export function packPackage({ log = console.log } = {}) {
  const r = spawnSync("npm", ["pack", "--pack-destination", "..", "--json", "--silent"], { cwd: out, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
  const [packed] = JSON.parse(r.stdout);
  const tarball = join(out, "..", packed.filename);
  log(`pack: ${relative(root, tarball)} (${packed.entryCount} files, ${(packed.size / 1024).toFixed(0)} KiB)`);
  return tarball;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildPackage();
  if (process.argv.includes("--pack")) packPackage();
}
