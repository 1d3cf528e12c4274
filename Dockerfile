# syntax=docker/dockerfile:1.7
# The platform's images for those who build with Docker: the same files that `npm run images`
# assembles without it (tools/images/platform-images.ts; tools/images/dockerfile.test.ts keeps
# the two in step). One target per image:
#
#   docker build --target runner --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE=https://example.com/kublambda.git -t registry.example/kublambda/runner:0.1.0 .
#
# Targets: api-controller, builder, runner, event-watcher, autoscaler, runner-base.
# No shell and no package manager in the images: node (the workspace's pinned Node 26), the
# libraries it loads, the bundle under /app/<service>, and for the builder what it runs at run time.

ARG NODE_IMAGE=node:26-bookworm

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
# npm ci brings the pinned Node (node_modules/node/bin/node), which runs the bundler and goes into the images.
RUN npm ci --no-fund --no-audit \
 && for app in api-controller builder runner event-watcher autoscaler; do (cd apps/$app && ../../node_modules/.bin/node ../../tools/build/bundle-app.ts) || exit 1; done

# Node and the shared libraries ldd names for it, at those paths (as collectBaseImageFiles does),
# and a /tmp anyone may write to.
FROM build AS runtime
RUN mkdir -p /runtime/usr/local/bin /runtime/tmp \
 && chmod 1777 /runtime/tmp \
 && cp /src/node_modules/node/bin/node /runtime/usr/local/bin/node \
 && for lib in $(ldd /src/node_modules/node/bin/node | grep -o '/[^ ]*'); do cp --parents -L "$lib" /runtime/; done

# prlimit and its libraries: the runner limits each worker's memory with it.
FROM build AS prlimit
RUN mkdir -p /prlimit \
 && cp --parents /usr/bin/prlimit /prlimit/ \
 && for lib in $(ldd /usr/bin/prlimit | grep -o '/[^ ]*'); do cp --parents -L "$lib" /prlimit/; done

FROM scratch AS api-controller
ARG SOURCE
ARG VERSION=0.1.0
ARG REVISION
COPY --from=runtime /runtime/ /
COPY --from=build /src/dist/apps/api-controller/*.mjs /app/api-controller/
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 65532:65532
LABEL org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.title=kublambda-api-controller \
      org.opencontainers.image.version=${VERSION}
ENTRYPOINT ["/usr/local/bin/node", "/app/api-controller/main.mjs"]

FROM scratch AS builder
ARG SOURCE
ARG VERSION=0.1.0
ARG REVISION
COPY --from=runtime /runtime/ /
COPY --from=build /src/dist/apps/builder/*.mjs /app/builder/
# What the builder runs from node_modules and reads while type-checking (see BUILDER_WORKSPACE_PATHS).
COPY --from=build /src/node_modules/esbuild /node_modules/esbuild
COPY --from=build /src/node_modules/@esbuild /node_modules/@esbuild
COPY --from=build /src/node_modules/typescript /node_modules/typescript
COPY --from=build /src/node_modules/@types/node /node_modules/@types/node
COPY --from=build /src/node_modules/undici-types /node_modules/undici-types
COPY --from=build /src/node_modules/@bull-board/ui /node_modules/@bull-board/ui
COPY --from=build /src/libs/lambda-api/src/index.ts /libs/lambda-api/src/index.ts
# npm, for lambdas' dependencies, started by a launcher: npm's own needs /usr/bin/env.
COPY --from=build /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY --chmod=755 <<EOF /usr/local/bin/npm
#!/usr/local/bin/node
require('/usr/local/lib/node_modules/npm/lib/cli.js')(process);
EOF
ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp
USER 65532:65532
LABEL org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.title=kublambda-builder \
      org.opencontainers.image.version=${VERSION}
ENTRYPOINT ["/usr/local/bin/node", "/app/builder/main.mjs"]

FROM scratch AS runner
ARG SOURCE
ARG VERSION=0.1.0
ARG REVISION
COPY --from=runtime /runtime/ /
COPY --from=build /src/dist/apps/runner/*.mjs /app/runner/
COPY --from=prlimit /prlimit/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 65532:65532
LABEL org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.title=kublambda-runner \
      org.opencontainers.image.version=${VERSION}
ENTRYPOINT ["/usr/local/bin/node", "/app/runner/main.mjs"]

FROM scratch AS event-watcher
ARG SOURCE
ARG VERSION=0.1.0
ARG REVISION
COPY --from=runtime /runtime/ /
COPY --from=build /src/dist/apps/event-watcher/*.mjs /app/event-watcher/
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 65532:65532
LABEL org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.title=kublambda-event-watcher \
      org.opencontainers.image.version=${VERSION}
ENTRYPOINT ["/usr/local/bin/node", "/app/event-watcher/main.mjs"]

FROM scratch AS autoscaler
ARG SOURCE
ARG VERSION=0.1.0
ARG REVISION
COPY --from=runtime /runtime/ /
COPY --from=build /src/dist/apps/autoscaler/*.mjs /app/autoscaler/
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 65532:65532
LABEL org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.title=kublambda-autoscaler \
      org.opencontainers.image.version=${VERSION}
ENTRYPOINT ["/usr/local/bin/node", "/app/autoscaler/main.mjs"]

# The base of lambda images: the runner, standalone on the lambda an image built on it adds under
# /lambda; as root, as it always ran. Last, so that a build without --target makes it.
FROM scratch AS runner-base
ARG SOURCE
ARG VERSION=0.1.0
ARG REVISION
COPY --from=runtime /runtime/ /
COPY --from=build /src/dist/apps/runner/ /app/runner/
COPY --from=prlimit /prlimit/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin KUBLAMBDA_STANDALONE_LAMBDA=/lambda/lambda.json
LABEL org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.title=kublambda-runner-base \
      org.opencontainers.image.version=${VERSION}
ENTRYPOINT ["/usr/local/bin/node", "/app/runner/main.mjs"]
