# CORTEX `cortex serve` image. Stages:
#
#   runtime-base  the small final image without the binary: a non-root user (uid/gid 10001), the
#                 /var/lib/cortex volume as CORTEX_HOME, CORTEX_HOST=0.0.0.0, port 8484, a health
#                 check on /health, SIGTERM to stop, `cortex serve` as the entrypoint.
#   prebuilt      runtime-base + a binary built outside Docker (CORTEX_BINARY, a path inside the
#                 build context). CI uses it: no registry is reachable there, so no builder image.
#   builder       cargo build --release --locked of the `cortex` binary in BUILDER_IMAGE.
#   runtime       runtime-base + the builder's binary: the default target.
#
#   docker build -t cortex .                                            # from source (BuildKit)
#   cargo build --release --locked && \
#     docker build --target prebuilt -t cortex .                        # a binary built on the host
#   docker run -d -p 127.0.0.1:8484:8484 -v cortex-data:/var/lib/cortex --name cortex cortex
#   docker exec cortex cortex keys api create --name me --role write    # prints the token once
#
# The default target needs BuildKit (Docker 23 and later by default; DOCKER_BUILDKIT=1 on 20.10),
# which builds only the stages the target needs; the legacy builder builds every stage before the
# target, so with it `prebuilt` (placed before `builder` for this reason) is the only target that
# works without a binary in the context and without a Rust image. The prebuilt binary must link
# against the runtime's glibc: build it on Debian 12 (bookworm) or older.
#
# No instruction here needs BuildKit (no RUN --mount, no COPY --chmod, no heredocs), so the legacy
# builder and docker-compose 1.29 build it too.

ARG BUILDER_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUNTIME_IMAGE} AS runtime-base
# ca-certificates: the trust roots of the HTTPS anchor and signer clients (rustls reads the
# system's store). A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it and a
# volume's ownership is the same in every image built from this file.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cortex \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/cortex --no-create-home \
        --shell /usr/sbin/nologin cortex \
 && mkdir -p /var/lib/cortex \
 && chown 10001:10001 /var/lib/cortex \
 && chmod 0750 /var/lib/cortex
ENV CORTEX_HOME=/var/lib/cortex \
    CORTEX_HOST=0.0.0.0 \
    CORTEX_PORT=8484
WORKDIR /var/lib/cortex
VOLUME ["/var/lib/cortex"]
EXPOSE 8484
# The runtime has no curl or wget, and `cortex` has no HTTP client command: bash (Essential in
# Debian, so in every Debian image) opens the port through /dev/tcp, sends a GET /health and
# checks the status line. It follows CORTEX_PORT; a port set only in a config file is not seen.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${CORTEX_PORT:-8484} && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r status <&3 && [[ $status == HTTP/1.?' 200 '* ]]"]
# cortex serve finishes the requests in flight on SIGTERM (at most 30 s) and exits 0: give
# `docker stop` more than that (`docker stop -t 35`, compose's stop_grace_period).
STOPSIGNAL SIGTERM
USER 10001:10001
ENTRYPOINT ["cortex", "serve"]

FROM runtime-base AS prebuilt
# A path inside the build context (.dockerignore lets target/release/cortex through).
ARG CORTEX_BINARY=target/release/cortex
COPY ${CORTEX_BINARY} /usr/local/bin/cortex
# Fails the build now, not the first start, if the binary cannot run on this runtime (glibc).
RUN ["cortex", "--version"]

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cortex \
 && install -m 0755 target/release/cortex /usr/local/bin/cortex

FROM runtime-base AS runtime
COPY --from=builder /usr/local/bin/cortex /usr/local/bin/cortex
RUN ["cortex", "--version"]
