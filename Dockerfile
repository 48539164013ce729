# syntax=docker/dockerfile:1
#
# One image for both roles; the role is the argument:
#
#   docker build -t shardwrite .
#   docker run shardwrite shard     # needs DATABASE_URL (see shard/config.ts)
#   docker run shardwrite router    # needs RING_DATABASE_URL (see router/config.ts)
#
# Everything else is configured by the environment, exactly as the config
# modules read it. No HEALTHCHECK: Kubernetes probes grpc.health.v1 natively.
# test/deploy/image.e2e.test.ts replays these steps outside Docker and starts
# the result with the ENTRYPOINT below.

# Node 22 is the maintained LTS line within package.json's engines (Node 20 is
# past its end of life); `--build-arg NODE_VERSION=20` builds on 20.
ARG NODE_VERSION=22

# --- production dependencies only (no dev tools, no embedded PostgreSQL binaries)
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

# --- compile TypeScript (needs the dev dependencies)
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
COPY shard ./shard
COPY router ./router
COPY relay ./relay
COPY pm-worker ./pm-worker
COPY cli ./cli
COPY scripts ./scripts
RUN npm run build && mkdir /app/empty

# --- the image that runs
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
WORKDIR /app
# Owned by root and only readable by the process: the code cannot be changed at run time.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY proto ./proto
# Where compose's `certs` service writes the development certificates: an empty
# directory owned by the runtime user (a fresh named volume takes its owner).
COPY --from=build --chown=1000:1000 /app/empty /var/lib/shardwrite/tls
# The `node` user of the base image, by number so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# Listen on every interface inside the container (the code's default is loopback).
ENV GRPC_ADDRESS=0.0.0.0:50051
# gRPC, shard metrics, router metrics (each when METRICS_ADDRESS binds 0.0.0.0).
EXPOSE 50051 9464 9465
# node is PID 1 and handles SIGTERM itself (graceful drain, src/process.ts), with the V8 flags of
# every service process (SERVICE_NODE_FLAGS there: a larger young generation).
ENTRYPOINT ["node", "--enable-source-maps", "--max-semi-space-size=32", "/app/bin/shardwrite.js"]
CMD ["--help"]
