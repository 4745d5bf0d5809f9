#!/usr/bin/env bash
# Builds HAProxy 3.0 LTS (the upstream tarball of Debian 13 "trixie"'s source
# package) into a cache folder outside the clone, so tests can also run against
# 3.0 while the machine keeps Debian 12's 2.6 as `haproxy`. Idempotent: a
# cached binary that reports 3.0 is reused. Needs root (apt) on a fresh machine.
#
#   scripts/haproxy30.sh            # prints the binary's path on its last line
#   HSDO_HAPROXY30_DIR=/some/dir scripts/haproxy30.sh
set -euo pipefail

dir="${HSDO_HAPROXY30_DIR:-/var/cache/hsdo-ci/haproxy-3.0}"
bin="$dir/haproxy"
log() { echo "haproxy30: $*" >&2; }

if [ -x "$bin" ] && "$bin" -v 2>/dev/null | head -n1 | grep -q 'version 3\.0\.'; then
  log "reusing $bin ($("$bin" -v | head -n1))"
  echo "$bin"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
sources=/etc/apt/sources.list.d/hsdo-trixie-src.sources
if [ ! -f "$sources" ]; then
  log "adding trixie deb-src ($sources)"
  cat >"$sources" <<'SRC'
# Added by hsdo scripts/haproxy30.sh: only to download HAProxy 3.0's source.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

log "apt-get update"
apt-get update -q >&2
log "installing build dependencies (Debian 12's)"
apt-get install -y -q --no-install-recommends \
  dpkg-dev build-essential libssl-dev libpcre2-dev zlib1g-dev ca-certificates >&2

mkdir -p "$dir/src"
cd "$dir/src"
if ! ls haproxy_3.0.*.orig.tar.gz >/dev/null 2>&1; then
  log "downloading trixie's haproxy source package into $dir/src"
  # The Debian part may fail to verify or unpack; only the upstream tarball is needed.
  apt-get source --download-only haproxy/trixie >&2 || true
fi
tarball="$(ls -1 haproxy_3.0.*.orig.tar.gz 2>/dev/null | sort -V | tail -n1 || true)"
if [ -z "$tarball" ]; then
  log "no haproxy_3.0.*.orig.tar.gz downloaded (trixie's haproxy is: $(apt-cache showsrc haproxy 2>/dev/null | grep -m1 '^Version' || echo unknown))"
  exit 1
fi
log "unpacking $tarball"
rm -rf build && mkdir build
tar -xzf "$tarball" -C build --strip-components=1
cd build
log "building (make -j2 TARGET=linux-glibc USE_OPENSSL=1 USE_PCRE2=1 USE_PROMEX=1; a few minutes)"
start=$(date +%s)
make -j"$(nproc)" TARGET=linux-glibc USE_OPENSSL=1 USE_PCRE2=1 USE_PROMEX=1 >"$dir/build.log" 2>&1 || {
  tail -n 40 "$dir/build.log" >&2
  log "build failed (whole log: $dir/build.log)"
  exit 1
}
log "built in $(( $(date +%s) - start ))s"
install -m 0755 haproxy "$bin.new"
mv -f "$bin.new" "$bin"
"$bin" -v | head -n1 | grep -q 'version 3\.0\.' || { log "$bin does not report 3.0: $("$bin" -v | head -n1)"; exit 1; }
log "ready: $("$bin" -v | head -n1)"
echo "$bin"
