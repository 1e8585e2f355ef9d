# syntax=docker/dockerfile:1.7
#
# One image per service, built from the repository root with the one root lockfile:
#
#   docker build --build-arg SERVICE=policy-inference -t mstar/policy-inference:0.0.0 .
#   docker build --build-arg SERVICE=policy-inference --build-arg VARIANT=gpu -t mstar/policy-inference-gpu:0.0.0 .
#
# SERVICE: a folder under services/ (policy-inference, prm-scoring, data-curation, trainer, balancer).
# VARIANT: cpu (Debian + Node.js) or gpu (CUDA 12 + cuDNN 9 runtime + Node.js, with onnxruntime-node's
# CUDA execution provider; the services pick it with DEVICE=cuda and log a warning when they have to
# fall back to CPU). The build stage needs network (npm registry; for gpu also NuGet, where
# onnxruntime-node takes its CUDA provider libraries from); the images need none at run time.
#
# The images run as uid 10001 (test/k8s checks that the manifests' runAsUser matches) with a
# read-only root filesystem: nothing is written outside /tmp (an emptyDir in Kubernetes) and the
# artifact volume.

ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG VARIANT=cpu

# --- the workspace's package manifests only, so `npm ci` is cached until a dependency changes ---
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /out \
 && cp package-lock.json .npmrc /out/ \
 && find . -name package.json -not -path '*/node_modules/*' -exec cp --parents {} /out/ \;

# --- install, build the one service and its libraries, drop dev dependencies ---
FROM ${NODE_IMAGE} AS build
ARG SERVICE
ARG VARIANT
WORKDIR /app
COPY --from=manifests /out/ ./
# Install scripts are skipped (npm 11 blocks unapproved ones anyway, npm 10 would run them all);
# the one that matters, onnxruntime-node's, runs explicitly below so both npm versions agree.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
# cpu: the CPU provider bundled in the package is all (the repository's .npmrc says
# onnxruntime-node-install=skip). gpu: fetch the CUDA 12 provider libraries next to it.
RUN case "${VARIANT}" in \
      cpu) export ONNXRUNTIME_NODE_INSTALL=skip ;; \
      gpu) export ONNXRUNTIME_NODE_INSTALL=cuda12 ;; \
      *) echo "VARIANT must be cpu or gpu, got '${VARIANT}'" >&2; exit 1 ;; \
    esac \
 && node node_modules/onnxruntime-node/script/install.js
COPY . .
RUN test -n "${SERVICE}" && test -f "services/${SERVICE}/package.json" \
    || { echo "SERVICE must name a folder under services/, got '${SERVICE}'" >&2; exit 1; }
RUN NX_DAEMON=false NX_NO_CLOUD=true npx nx run "@mstar/${SERVICE}:build" --outputStyle=static \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime bases ---
FROM ${NODE_IMAGE} AS runtime-cpu

FROM ${CUDA_IMAGE} AS runtime-gpu
# The same Node.js as the build stage (the CUDA images have none).
COPY --from=build /usr/local/bin/node /usr/local/bin/node

# --- the image ---
FROM runtime-${VARIANT} AS runtime
ARG SERVICE
ARG VARIANT
RUN groupadd --system --gid 10001 mstar \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mstar
WORKDIR /app
# Owned by root and read-only to the service. Workspace packages resolve through the symlinks in
# node_modules/@mstar to libs/ and services/<SERVICE>; proto/ is the reflection source (PROTO_DIR).
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/libs ./libs
COPY --from=build /app/proto ./proto
COPY --from=build /app/services/${SERVICE} ./services/${SERVICE}
RUN ln -s "services/${SERVICE}/dist/main.js" /app/main.js
ENV NODE_ENV=production \
    MSTAR_SERVICE=${SERVICE} \
    MSTAR_VARIANT=${VARIANT} \
    ARTIFACT_DIR=/artifacts \
    PROTO_DIR=/app/proto
LABEL org.opencontainers.image.title="mstar ${SERVICE} (${VARIANT})"
USER 10001:10001
# Prometheus metrics; the gRPC port is the service's GRPC_PORT (50051..50055, see k8s/base).
EXPOSE 9464
# Node is PID 1: the services handle SIGTERM themselves (drain, then exit).
ENTRYPOINT ["node", "/app/main.js"]
