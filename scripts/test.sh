#!/usr/bin/env bash
# Command 2: install everything the tests need (apt, pip, go) and run them. Fails on any failure or if no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"

need_apt=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== pip install -e .[test]"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'

if ! command -v opa >/dev/null 2>&1; then
  echo "== go install opa"
  go install github.com/open-policy-agent/opa@v1.22.4
fi

echo "== opa test policies/"
opa test policies/ -v | tail -n 3

echo "== pytest"
set +e
python3 -m pytest -q -p no:cacheprovider -ra "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
