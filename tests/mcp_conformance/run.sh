#!/usr/bin/env bash
# Runs the official MCP conformance suite (server scenarios) against `cortex mcp start
# --transport http`, judged strictly against expected-failures.txt. `cargo test --test
# mcp_conformance` (part of the README's test command) installs the suite on first use and runs
# this script; to run it by hand afterwards: tests/mcp_conformance/run.sh [SUITE_DIR]
# The suite directory holds node_modules with @modelcontextprotocol/conformance and a Node >= 22
# from the node-linux-<arch> package; it is the argument, else $CORTEX_MCP_CONFORMANCE_DIR, else
# target/test-peers/npm/mcp-conformance.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
conf="${1:-${CORTEX_MCP_CONFORMANCE_DIR:-${CARGO_TARGET_DIR:-$root/target}/test-peers/npm/mcp-conformance}}"
if [ ! -x "$conf/node_modules/.bin/conformance" ]; then
  if [ "${CI:-}" = "true" ]; then echo "conformance suite missing under $conf" >&2; exit 1; fi
  echo "skipped: conformance suite missing under $conf (cargo test --test mcp_conformance installs it)"; exit 0
fi
for node in "$conf"/node_modules/node-linux-*/bin; do
  if [ -x "$node/node" ]; then export PATH="$node:$PATH"; fi
done
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
