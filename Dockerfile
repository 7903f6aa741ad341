# syntax=docker/dockerfile:1
# The stageset-controller image: the compiled controller (and stagesetctl) on
# a distroless Node.js runtime, with kbuild — the confined build helper on the
# kustomize API of the pinned kustomize (tools/kbuild) — that every stage build
# runs. Non-root (65532), no shell, no package manager; the chart mounts an
# emptyDir at /tmp and runs it with a read-only root filesystem.
#
#   make image            (picks docker, podman, buildah or nerdctl)

ARG NODE_VERSION=22
ARG GO_VERSION=1.26

# kbuild, built by the script hack/tools.sh builds it with (same patches,
# ldflags and source hash).
FROM docker.io/library/golang:${GO_VERSION}-bookworm AS kbuild
ARG KUSTOMIZE_VERSION=v5.8.2
WORKDIR /src/tools/kbuild
COPY tools/kbuild/go.mod tools/kbuild/go.sum ./
RUN go mod download
COPY tools/kbuild/ ./
RUN ./build.sh /out/kbuild "${KUSTOMIZE_VERSION}" \
 && /out/kbuild --version

# The TypeScript build, then only the production dependencies.
FROM docker.io/library/node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src/ src/
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="stageset-controller" \
      org.opencontainers.image.description="Ordered, gated, multi-stage delivery for Flux" \
      org.opencontainers.image.source="https://github.com/metio/stageset-controller" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=kbuild /out/kbuild /usr/local/bin/kbuild
ENV NODE_ENV=production \
    STAGESET_KBUILD_BIN=/usr/local/bin/kbuild \
    STAGESET_VERSION=${VERSION}
USER 65532:65532
# stagesetctl: --entrypoint /nodejs/bin/node … /app/dist/src/cli/main.js
# V8 flags: src/util/node-flags.ts (a unit test keeps them in step).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=8", "/app/dist/src/main.js"]
