#!/usr/bin/env bash
# Label Studio for advfilter's human verification, in its own virtual environment (its server
# pins many packages, so it stays out of the project's venv).
#
#   scripts/labelstudio.sh install          # creates $LS_VENV (default .ls-venv) with label-studio
#   scripts/labelstudio.sh start [PORT]     # starts it on 127.0.0.1:PORT (default 8080)
#
# `start` keeps its data in $LABEL_STUDIO_BASE_DATA_DIR (default ~/.advfilter/label-studio),
# creates the user $LABEL_STUDIO_USERNAME / $LABEL_STUDIO_PASSWORD on first start, and a legacy
# API token that it writes to $LABEL_STUDIO_BASE_DATA_DIR/api_key (mode 600) without printing it:
#   export LABEL_STUDIO_URL=http://127.0.0.1:8080
#   export LABEL_STUDIO_API_KEY=$(cat ~/.advfilter/label-studio/api_key)
set -euo pipefail
LS_VENV=${LS_VENV:-.ls-venv}
case "${1:-}" in
  install)
    python3 -m venv "$LS_VENV"
    "$LS_VENV/bin/python" -m pip install --quiet --upgrade pip
    # sentry-sdk 3 dropped an option Label Studio 1.23 passes it: the server exits at start.
    "$LS_VENV/bin/python" -m pip install --quiet 'label-studio==1.23.2' 'sentry-sdk<3'
    ;;
  start)
    port=${2:-8080}
    data=${LABEL_STUDIO_BASE_DATA_DIR:-$HOME/.advfilter/label-studio}
    mkdir -p "$data"
    if [ ! -s "$data/api_key" ]; then
      (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(20))' > "$data/api_key")
    fi
    echo "Label Studio on http://127.0.0.1:$port (data: $data; API key in $data/api_key)"
    LABEL_STUDIO_BASE_DATA_DIR="$data" \
    LABEL_STUDIO_USERNAME=${LABEL_STUDIO_USERNAME:-annotator@example.com} \
    LABEL_STUDIO_PASSWORD=${LABEL_STUDIO_PASSWORD:-change-me-please} \
    LABEL_STUDIO_USER_TOKEN=$(cat "$data/api_key") \
    LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
    exec "$LS_VENV/bin/label-studio" start --no-browser --host 127.0.0.1 --port "$port"
    ;;
  *)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
