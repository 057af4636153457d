# hermes-s6 container image (README: The container image).
#
# Written for Docker's classic builder as well as BuildKit: no RUN --mount,
# no heredocs.
#
# The Go binaries are built outside the image (no Go toolchain image has to
# be pulled): run `make build` first, which writes bin/hermes-s6 (static)
# and bin/hermes-standin.
#
#   docker build -t hermes-agent .
#       release image: s6-overlay v3 from its release tarballs and the real
#       gateway from PyPI (needs GitHub and PyPI; see the last stage).
#   make e2e-image   (or: docker build --target e2e --network=host --build-arg S6_OVERLAY_BASE_URL=...)
#       test image: the stand-in gateway as `hermes` (the container tier, docs/ARCHITECTURE.md).
#
# Stages, in order. The classic builder builds every stage that comes before
# its target, used or not (a default build needs bin/hermes-standin too):
#   os          Debian, the few packages the image needs, the hermes account
#   s6-overlay  s6-overlay v3 from its release tarballs, checksums verified
#   runtime     s6-overlay + rootfs/ + hermes-s6
#   e2e         runtime + the stand-in gateway (tests/standin) as `hermes`
#   hermes      runtime + the real gateway (default target)
#
# There is one s6 provider, the real s6-overlay: `make image` and `make e2e`
# serve ../shared/s6-overlay/<version>/ on loopback when it exists and pass
# S6_OVERLAY_BASE_URL (see scripts/e2e/run.sh).

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS os

# procps: `ps` for operators and tests. curl, ca-certificates, xz-utils:
# fetching and unpacking s6-overlay, and HTTP checks inside the container.
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl procps xz-utils; \
    apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# The service account every gateway runs as; its home is the data volume.
# /run is group-writable for gid 0 (not world-writable) so that s6-overlay
# can still boot under `docker run --user UID`, whose group is 0, and the
# shim can then refuse that user with advice (docs/shim.md).
RUN set -eu; \
    groupadd --gid 10000 hermes; \
    useradd --uid 10000 --gid 10000 --home-dir /opt/data --no-create-home \
        --shell /usr/sbin/nologin hermes; \
    install -d -o hermes -g hermes -m 0700 /opt/data; \
    chmod 0775 /run

FROM os AS s6-overlay
ARG S6_OVERLAY_VERSION=3.2.3.2
ARG S6_OVERLAY_BASE_URL=https://github.com/just-containers/s6-overlay/releases/download/v${S6_OVERLAY_VERSION}
RUN set -eu; \
    dpkg_arch=$(dpkg --print-architecture); \
    case "$dpkg_arch" in \
        amd64) arch=x86_64 ;; \
        arm64) arch=aarch64 ;; \
        armhf) arch=armhf ;; \
        armel) arch=arm ;; \
        i386) arch=i686 ;; \
        ppc64el) arch=powerpc64le ;; \
        riscv64) arch=riscv64 ;; \
        s390x) arch=s390x ;; \
        *) echo "s6-overlay: no release for architecture $dpkg_arch" >&2; exit 1 ;; \
    esac; \
    dir=$(mktemp -d); \
    cd "$dir"; \
    for f in s6-overlay-noarch.tar.xz "s6-overlay-$arch.tar.xz"; do \
        curl -fsSL --retry 3 -o "$f" "$S6_OVERLAY_BASE_URL/$f"; \
        curl -fsSL --retry 3 -o "$f.sha256" "$S6_OVERLAY_BASE_URL/$f.sha256"; \
        sha256sum -c "$f.sha256"; \
    done; \
    tar -C / -Jxpf s6-overlay-noarch.tar.xz; \
    tar -C / -Jxpf "s6-overlay-$arch.tar.xz"; \
    cd /; \
    rm -rf "$dir"

# The stop sequence (docs/stop.md): /etc/cont-finish.d/50-hermes-s6-drain
# takes every gateway down through s6 within HERMES_S6_DRAIN_TIMEOUT while
# the loggers run; what stage 3 then kills (empty loggers, `sleep`, the
# supervisors) exits on SIGTERM at once, so its grace can be short.
FROM s6-overlay AS runtime
ENV HERMES_HOME=/opt/data \
    HERMES_S6_DRAIN_TIMEOUT=8s \
    S6_KILL_GRACETIME=100 \
    PATH=/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY rootfs/ /
COPY bin/hermes-s6 /usr/local/bin/hermes-s6
VOLUME /opt/data
# Health (docs/health.md): every 30 s, `hermes-s6 health` checks what this
# container was asked to run (its gateways, its dashboard, or its
# foreground gateway). It takes milliseconds; 10 s is for a machine under
# load. The 60 s start period matches its start grace; three misses in a
# row make the container unhealthy (about 90 s of a parked gateway).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/hermes-s6", "health"]
ENTRYPOINT ["/usr/local/bin/hermes-s6", "entrypoint", "--"]
CMD ["gateway", "run"]

# The test image: the project's stand-in gateway plays `hermes`.
FROM runtime AS e2e
COPY bin/hermes-standin /usr/local/bin/hermes

# The release image: the real gateway, pip-installed from PyPI into its own
# virtualenv. Set HERMES_AGENT_VERSION to pin it (empty: the latest release).
# Not buildable offline; `make e2e` never builds this stage.
FROM runtime AS hermes
ARG HERMES_AGENT_VERSION=
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv; \
    apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    python3 -m venv /opt/hermes-agent; \
    /opt/hermes-agent/bin/pip install --no-cache-dir \
        "hermes-agent${HERMES_AGENT_VERSION:+==$HERMES_AGENT_VERSION}"; \
    ln -s /opt/hermes-agent/bin/hermes /usr/local/bin/hermes
