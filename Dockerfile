# syntax=docker/dockerfile:1
# hsdo: one image for `hsdo --server`, `hsdo --client` and the other commands.
# The build stage compiles and packs the release tarball (npm run pack, as
# for an npm install on a host); the runtime stage installs only that
# tarball with its production dependencies: no sources, no tsx, no esbuild.
#
#   docker build --build-arg HSDO_BUILD_COMMIT=$(git rev-parse --short=12 HEAD) -t hsdo .
#   docker run --rm hsdo --version
#   docker run --rm hsdo config            # the effective configuration
#   docker run --rm -e SERVER_ASG_NAMES=web hsdo --server
#
# Node 22 (LTS), pinned by digest so that a rebuild gets the same base. The
# digest is the multi-arch index of node:22-bookworm-slim as found in public
# Dockerfiles; it was not pulled here (no registry access): check it, and
# move it forward, with `docker buildx imagetools inspect node:22-bookworm-slim`.
ARG NODE_IMAGE=node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Manifests first: this layer is rebuilt only when dependencies change.
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/store/package.json packages/store/
COPY packages/server/package.json packages/server/
COPY packages/client/package.json packages/client/
COPY packages/cli/package.json packages/cli/
# The test kit is a workspace too (npm ci wants every manifest).
COPY packages/testkit/package.json packages/testkit/
# All dependencies (esbuild builds). Install scripts stay off as in
# development (package.json "allowScripts"): esbuild and classic-level load
# the prebuilt binaries their packages ship.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY packages/ ./packages/
COPY scripts/build.mjs ./scripts/
COPY README.md ./
COPY conf/ ./conf/
# No .git in the build context: the commit comes from the build argument.
ARG HSDO_BUILD_COMMIT=unknown
RUN HSDO_BUILD_COMMIT="${HSDO_BUILD_COMMIT}" node scripts/build.mjs --pack \
    && mv dist/hsdo-*.tgz /hsdo.tgz

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING=1
# A fixed uid/gid, so volumes and Kubernetes' runAsUser can name it.
RUN groupadd --system --gid 10001 hsdo \
    && useradd --system --uid 10001 --gid hsdo --home-dir /var/lib/hsdo --no-create-home --shell /usr/sbin/nologin hsdo \
    && mkdir -p /var/lib/hsdo /etc/hsdo \
    && chown hsdo:hsdo /var/lib/hsdo
# The tarball, as an operator installs it: /usr/local/bin/hsdo, production dependencies only.
RUN --mount=type=bind,from=build,source=/hsdo.tgz,target=/tmp/hsdo.tgz \
    npm install -g --omit=dev --ignore-scripts --no-audit --no-fund /tmp/hsdo.tgz \
    && npm cache clean --force
WORKDIR /var/lib/hsdo
USER 10001:10001
# /metrics, /healthz, /readyz (EXPORTER_PORT, default 6789). The health check
# follows EXPORTER_PORT/HSDO_HTTP_PORT; a port set only in the YAML file needs
# the same value in one of them.
EXPOSE 6789
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HSDO_HTTP_PORT || process.env.EXPORTER_PORT || 6789) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/local/bin/hsdo"]
CMD ["--help"]
