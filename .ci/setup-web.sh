#!/usr/bin/env bash
# The dashboard's front end, for CI:
# - installs Debian's Chromium for the browser test when it is missing (never a downloaded build);
# - installs the pinned npm packages of crates/regimen-ui/web/package-lock.json (`npm ci`);
# - type-checks the TypeScript and rebuilds the bundle from it, failing when the committed copy in
#   crates/regimen-ui/assets differs (it is committed so that `cargo build` needs no npm).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/crates/regimen-ui/web"

if [[ ! -x "${REGIMEN_CHROMIUM:-/usr/bin/chromium}" ]]; then
    echo "setup-web: installing Debian's chromium" >&2
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi

cd "$web"
npm ci --no-audit --no-fund --loglevel=error >&2
npx tsc --noEmit -p . >&2
built="$(mktemp -d)"
trap 'rm -rf "$built"' EXIT
node build.mjs "$built" >&2
for file in app.js app.css; do
    if ! cmp -s "$built/$file" "$root/crates/regimen-ui/assets/$file"; then
        echo "setup-web: crates/regimen-ui/assets/$file differs from what its sources build;" \
             "run \`npm run build\` in crates/regimen-ui/web and commit the result" >&2
        exit 1
    fi
done
