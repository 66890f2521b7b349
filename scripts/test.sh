#!/usr/bin/env bash
# Runs Helvetia's whole test suite: formatting, lints, unit tests, the store suite on SQLite
# and PostgreSQL, and the end-to-end tests on a real Docker engine and Traefik.
# Run as root on Debian/Ubuntu; the first run installs what is missing (scripts/dev-setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# Assigned first so that a failing set-up stops the run (eval alone would hide its status).
setup_env=$(scripts/dev-setup.sh)
eval "$setup_env"
# Test databases are created per test; remove any that a crashed earlier run left behind.
su postgres -c "psql -tAc \"SELECT datname FROM pg_database WHERE datname LIKE 'helvetia_test_%'\"" |
    while read -r db; do su postgres -c "psql -qc 'DROP DATABASE IF EXISTS $db WITH (FORCE)'"; done

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== dashboard assets: vendored files as published, the log viewer and charts in Chromium"
scripts/check-vendored.sh
npm test --prefix tests/browser
echo "== cargo test"
# One test at a time: the end-to-end and fault tests each run servers, builds, load, second
# engines and database clusters; two at once on a 2-core machine turned timings into failures.
cargo test --workspace --locked -- --test-threads=1
