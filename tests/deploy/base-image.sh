#!/usr/bin/env bash
# Makes the Debian 12 base image the deployment tests build on, without a registry:
#
#   debootstrap --variant=minbase bookworm ROOTFS MIRROR   (about a minute, once per machine)
#   tar -C ROOTFS -c . > /var/tmp/cortex-test-base-rN.tar (the cache, outside any clone)
#   docker import ... cortex-test-base:bookworm
#
# It stands in for debian:bookworm-slim (RUNTIME_IMAGE / BASE_IMAGE of the Dockerfiles): the same
# suite, sources (bookworm, bookworm-updates, bookworm-security), dpkg path excludes and apt
# cleaning, no apt lists. Reuses, in this order, the imported image when its recipe label is current, then the tar,
# then debootstraps. Serialized by flock, so parallel tests make it once.
#
# Environment: CORTEX_TEST_BASE_IMAGE (default cortex-test-base:bookworm), CORTEX_TEST_BASE_CACHE
# (default /var/tmp), CORTEX_TEST_DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Exit codes: 0 the image is there; 2 a tool is missing (the message names it); 1 it failed.
set -euo pipefail

# Bump when the rootfs recipe below changes: the image and the tar of an older recipe are remade.
RECIPE=r2
IMAGE="${CORTEX_TEST_BASE_IMAGE:-cortex-test-base:bookworm}"
CACHE="${CORTEX_TEST_BASE_CACHE:-/var/tmp}"
MIRROR="${CORTEX_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TAR="$CACHE/cortex-test-base-$RECIPE.tar"
LABEL=org.cortex.test-base.recipe

missing() { echo "base-image.sh: $*" >&2; exit 2; }
command -v docker >/dev/null || missing "docker (the client) is not installed: apt-get install docker.io"
command -v flock >/dev/null || missing "flock is not installed: apt-get install util-linux"
docker info >/dev/null 2>&1 || missing "no Docker daemon answers: start one (dockerd >/tmp/dockerd.log 2>&1 &)"

current() {
    [ "$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null)" = "$RECIPE" ]
}

mkdir -p "$CACHE"
exec 9>"$CACHE/cortex-test-base.lock"
flock -w 900 9 || { echo "base-image.sh: another run held $CACHE/cortex-test-base.lock for 15 min" >&2; exit 1; }

current && exit 0

if [ ! -s "$TAR" ]; then
    command -v debootstrap >/dev/null || missing "debootstrap is not installed: apt-get install debootstrap"
    [ "$(id -u)" = 0 ] || missing "debootstrap needs root"
    began=$SECONDS
    root=$(mktemp -d "$CACHE/cortex-test-base-rootfs.XXXXXX")
    trap 'rm -rf "$root" "$TAR.part"' EXIT
    echo "base-image.sh: debootstrap --variant=minbase bookworm from $MIRROR (once per machine)" >&2
    if ! debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1; then
        tail -20 "$root.log" >&2
        # debootstrap keeps its own log inside the target.
        tail -20 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
        rm -f "$root.log"
        echo "base-image.sh: debootstrap failed" >&2
        exit 1
    fi
    rm -f "$root.log"
    # As debian:bookworm-slim has them: deb822 sources with the updates and the security suite,
    # dpkg leaving out documentation, manuals and translations, no package lists or archives.
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    # apt as in Debian's container images: no caches or .debs left in a layer, no translations.
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$root"/usr/share/{groff,info,linda,locale,man}/* "$root"/usr/share/lintian/overrides/*
    rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    rm -rf "$root"/var/log/* "$root"/tmp/* "$root/debootstrap"
    tar --numeric-owner -C "$root" -cf "$TAR.part" .
    mv "$TAR.part" "$TAR"
    rm -rf "$root"
    trap - EXIT
    echo "base-image.sh: $TAR made in $((SECONDS - began)) s" >&2
fi

docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $LABEL=$RECIPE" \
    "$TAR" "$IMAGE" >/dev/null
current || { echo "base-image.sh: $IMAGE was imported but lacks $LABEL=$RECIPE" >&2; exit 1; }
echo "base-image.sh: imported $IMAGE from $TAR" >&2
