#!/usr/bin/env bash
# Checks that every file in crates/server/assets/vendor/ is exactly what its npm package ships:
# each package named in the VENDORED manifest is fetched again at its pinned version and each
# vendored file is compared byte-for-byte with the file in the tarball and with the manifest's
# sha256. A file in the directory that the manifest does not list fails too, so nothing
# unreviewed is served. Run from anywhere; needs npm and access to its registry.
set -euo pipefail
cd "$(dirname "$0")/.."

vendor=crates/server/assets/vendor
manifest=$vendor/VENDORED
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "check-vendored: $*" >&2; failed=1; }
failed=0
declare -A listed

while read -r file package version path sha256; do
    case $file in '' | '#'*) continue ;; esac
    listed[$file]=1
    unpacked=$tmp/$package@$version
    if [ ! -d "$unpacked" ]; then
        mkdir -p "$unpacked"
        tarball=$(npm pack --silent --pack-destination "$tmp" "$package@$version")
        tar -xzf "$tmp/$tarball" -C "$unpacked"
    fi
    if [ ! -f "$vendor/$file" ]; then
        fail "$file: listed in VENDORED but missing"
    elif [ ! -f "$unpacked/$path" ]; then
        fail "$file: $package@$version has no $path"
    elif ! cmp -s "$vendor/$file" "$unpacked/$path"; then
        fail "$file: differs from $path in $package@$version"
    elif [ "$(sha256sum "$vendor/$file" | cut -d' ' -f1)" != "$sha256" ]; then
        fail "$file: sha256 differs from VENDORED"
    fi
done <"$manifest"

for f in "$vendor"/*; do
    name=$(basename "$f")
    [ "$name" = VENDORED ] || [ -n "${listed[$name]:-}" ] || fail "$name: not listed in VENDORED"
done

[ "$failed" = 0 ] && echo "check-vendored: ${#listed[@]} files match their npm packages"
exit "$failed"
