# syntax=docker/dockerfile:1
# hsdo: one image for `hsdo --server`, `hsdo --client` and the other commands.
# The TypeScript sources run through tsx (a runtime dependency of @hsdo/cli),
# so there is no compile step: the build stage only installs production
# dependencies, and the runtime stage adds the sources and a non-root user.
#
#   docker build -t hsdo .
#   docker run --rm hsdo config            # the effective configuration
#   docker run --rm -e SERVER_ASG_NAMES=web hsdo --server

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# Manifests first: this layer is rebuilt only when dependencies change.
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/store/package.json packages/store/
COPY packages/server/package.json packages/server/
COPY packages/client/package.json packages/client/
COPY packages/cli/package.json packages/cli/
# The test kit is a workspace too (npm ci wants every manifest), though no package of the image depends on it.
COPY packages/testkit/package.json packages/testkit/
# --omit=dev keeps tsx, which @hsdo/cli lists as a dependency. Install scripts
# stay off as in development (package.json "allowScripts"): esbuild and
# classic-level load the prebuilt binaries their packages ship.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING=1
# A fixed uid/gid, so volumes and Kubernetes' runAsUser can name it.
RUN groupadd --system --gid 10001 hsdo \
    && useradd --system --uid 10001 --gid hsdo --home-dir /var/lib/hsdo --no-create-home --shell /usr/sbin/nologin hsdo \
    && mkdir -p /var/lib/hsdo /etc/hsdo \
    && chown hsdo:hsdo /var/lib/hsdo
WORKDIR /app
# node_modules, with the workspace links to packages/*, and any nested
# packages/*/node_modules npm had to create.
COPY --from=deps /app /app
COPY packages/ ./packages/
RUN ln -s /app/packages/cli/bin/hsdo.js /usr/local/bin/hsdo \
    && chmod 0755 /app/packages/cli/bin/hsdo.js
USER 10001:10001
# /metrics, /healthz, /readyz (EXPORTER_PORT, default 6789). The health check
# follows EXPORTER_PORT/HSDO_HTTP_PORT; a port set only in the YAML file needs
# the same value in one of them.
EXPOSE 6789
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HSDO_HTTP_PORT || process.env.EXPORTER_PORT || 6789) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/packages/cli/bin/hsdo.js"]
CMD ["--help"]
