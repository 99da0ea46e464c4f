#!/usr/bin/env bash
# Command 1: install zerotrust and serve the embedded default (SQLite API keys, built-in policy, no external service).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e . >&2
export ZT_API_KEY_DB="${ZT_API_KEY_DB:-$PWD/zerotrust-keys.db}"
if ! zerotrust apikey list --config examples/quickstart.yaml 2>/dev/null | grep -q ' quickstart-demo '; then
  key=$(zerotrust apikey create --config examples/quickstart.yaml --name quickstart-demo --scope api:read --scope api:write | tail -n 1)
  echo "Created API key 'quickstart-demo' (shown once): $key" >&2
  echo "Try: curl -i -H 'X-API-Key: $key' http://${ZT_LISTEN:-127.0.0.1:9191}/hello" >&2
fi
exec zerotrust serve --config examples/quickstart.yaml "$@"
