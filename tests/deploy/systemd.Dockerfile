# A Debian 12 container that boots systemd, for tests/deploy.rs: it starts
# deploy/systemd/cortex.service as written, so its sandbox (seccomp filter, user namespace,
# no capabilities, read-only system) is applied to the real binary, not only parsed.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd systemd-sysv \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && useradd --system --home-dir /var/lib/cortex --no-create-home --shell /usr/sbin/nologin cortex
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
