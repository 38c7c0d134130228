#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright's own browser download cannot work on these
# machines). Idempotent: does nothing when /usr/bin/chromium is there. Needs root for apt-get.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-browser: /usr/bin/chromium is missing and this is not root; run: sudo apt-get install chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
