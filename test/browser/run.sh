#!/bin/sh
# Installs what the browser tests need and runs them:
#   - Debian's chromium (no browser is ever downloaded by npm: playwright-core
#     has no install script, and PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD guards it);
#   - the npm packages of the chat-room demo, and its bundle;
#   - the npm packages of these tests (playwright-core, mqtt);
# then, unless the argument is "install", runs the Go tests in this
# directory with CI=true, so that a missing piece fails instead of
# skipping. The screenshot lands in $CP7_ARTIFACTS (default: a fresh
# temporary directory); the test log prints its path.
#
# `make test` runs these tests too, and under CI=true fails if they cannot
# run: .ci/run calls `test/browser/run.sh install` before `make test`.
#
# Usage, from anywhere: test/browser/run.sh [install]
# Set SKIP_APT=1 where chromium is already installed or apt is not root's.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ "${SKIP_APT:-}" != 1 ] && [ ! -x /usr/bin/chromium ]; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$root/examples/chatroom" && npm ci --no-audit --no-fund && npm run build)
(cd "$root/test/browser" && npm ci --no-audit --no-fund)

[ "${1:-}" = install ] && exit 0
cd "$root"
CI=true go test -count=1 -v ./test/browser/
