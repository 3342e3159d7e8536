#!/usr/bin/env bash
# Third-party interop suite for caddy-mcp-auth.
#
#   cd interop && npm ci && CADDY=/path/to/caddy ./run.sh
#
# Starts, all on 127.0.0.1 with OS-chosen free ports:
#   - the authorization server  (oidc-provider, as.mjs)
#   - the MCP server            (official TypeScript SDK, mcp-server.mjs)
#   - caddy with mcp_auth in front of the MCP server (Caddyfile written below)
# and runs, against the gateway:
#   http/*          raw HTTP checks of the resource-server contract (checks.mjs)
#   sdk-client/*    the TypeScript SDK client's own OAuth flow incl. step-up (client.mjs)
#   opaque/*        a second resource (/opaque) whose opaque tokens the gateway checks by
#                   RFC 7662 introspection: raw checks (opaque.mjs) and the SDK client's
#                   OAuth flow against it (client.mjs, opaque/sdk-client/*)
#   go-client/*     sdk-client/* with the Go SDK's OAuth client (goclient/, built with `go`)
#   inspector/*     MCP Inspector CLI, with --header and with its own OAuth (inspector.mjs)
#   conformance/*   @modelcontextprotocol/conformance server scenarios through a
#                   token-adding forwarder (forwarder.mjs, conformance.mjs)
# Prints one "ok name" / "FAIL name: why" line per scenario and ends with
# "N passed, N failed". Exits non-zero if anything failed.
#
# Environment:
#   CADDY         (required) caddy binary built from this repo (go build -o ... ./cmd/caddy)
#   NODE          node >= 22.19 (default: the one npm ci put in node_modules/.bin; when
#                 node_modules is missing, run.sh runs npm ci itself)
#   STEPUP=0      leave out the per-tool scope (`tool admin_action mcp:admin`) and the
#                 step-up scenarios
#   ONLY="a b"    run only these parts: checks client opaque goclient inspector conformance
#   KEEP_WORK=1   keep the temp dir with the Caddyfile and all logs
#   VERBOSE=1     trace HTTP exchanges of the clients to the logs, and Caddy's access
#                 log to access.log (with KEEP_WORK=1)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START=$(date +%s)
: "${CADDY:?set CADDY to a caddy binary built with the mcp_auth module}"
CADDY=$(command -v "$CADDY" || true)
[[ -x "$CADDY" ]] || { echo "CADDY is not an executable" >&2; exit 2; }
if [[ -z "${NODE:-}" && ! -x "$HERE/node_modules/.bin/node" ]]; then
  echo "# node_modules missing: npm ci" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund >&2)
fi
NODE=${NODE:-$HERE/node_modules/.bin/node}
[[ -x "$NODE" ]] || { echo "no node at $NODE: run 'npm ci' in $HERE first" >&2; exit 2; }
STEPUP=${STEPUP:-1}
ONLY=${ONLY:-checks client opaque goclient inspector conformance}
export STEPUP
[[ "${VERBOSE:-0}" == 1 ]] && export CLIENT_TRACE=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-auth-interop.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "${KEEP_WORK:-0}" == 1 ]]; then echo "# logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$NODE" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
# wait_for_line FILE REGEX SECONDS PID
wait_for_line() {
  local deadline=$((SECONDS + $3))
  until grep -qE "$2" "$1" 2>/dev/null; do
    if ! kill -0 "$4" 2>/dev/null; then echo "process for $1 died:" >&2; tail -20 "$1" >&2; return 1; fi
    if ((SECONDS >= deadline)); then echo "timeout waiting for '$2' in $1" >&2; tail -20 "$1" >&2; return 1; fi
    sleep 0.2
  done
}
# wait_for_port PORT SECONDS PID: until something listens on 127.0.0.1:PORT
wait_for_port() {
  local deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

AS_PORT=$(free_port)
MCP_PORT=$(free_port)
GW_PORT=$(free_port)
FWD_PORT=$(free_port)
export AS_PORT MCP_PORT GW_PORT
ISSUER=http://127.0.0.1:$AS_PORT
MCP_URL=http://127.0.0.1:$GW_PORT/mcp

# ---- authorization server and MCP server
"$NODE" "$HERE/as.mjs" "$AS_PORT" >"$WORK/as.log" 2>&1 &
PIDS+=($!)
"$NODE" "$HERE/mcp-server.mjs" "$MCP_PORT" >"$WORK/mcp.log" 2>&1 &
PIDS+=($!)
wait_for_line "$WORK/as.log" '^AS ready' 20 "${PIDS[0]}"
wait_for_line "$WORK/mcp.log" '^MCP ready' 20 "${PIDS[1]}"

# ---- the gateway
TOOL_LINE=""
[[ "$STEPUP" != 0 ]] && TOOL_LINE="tool admin_action mcp:admin"
LOG_BLOCK=""
[[ "${VERBOSE:-0}" == 1 ]] && LOG_BLOCK="log {
		output file $WORK/access.log
	}"
OPAQUE_URL=http://127.0.0.1:$GW_PORT/opaque
# The gateway's own client at the introspection endpoint (as.mjs's confidential client).
export INTEROP_CC_ID=${AS_CC_CLIENT_ID:-interop-cc}
export INTEROP_CC_SECRET=${AS_CC_CLIENT_SECRET:-interop-cc-secret}
cat >"$WORK/Caddyfile" <<EOF
{
	admin off
	auto_https off
}
# A port-only address: requests for any Host reach mcp_auth, whose Origin
# check refuses DNS-rebinding attempts (403) instead of Caddy answering an
# unmatched Host with an empty 200.
:{\$GW_PORT} {
	# Two protected resources on one host, one MCP server behind both.
	# /mcp: JWT access tokens (RFC 9068), checked locally.
	mcp_auth /mcp* {
		resource http://127.0.0.1:{\$GW_PORT}/mcp
		issuer http://127.0.0.1:{\$AS_PORT} {
			# jwks_uri is discovered from RFC 8414 / OIDC metadata
		}
		require_scope mcp:read
		$TOOL_LINE
	}
	# /opaque: opaque access tokens, checked by RFC 7662 introspection.
	mcp_auth /opaque* {
		resource http://127.0.0.1:{\$GW_PORT}/opaque
		issuer http://127.0.0.1:{\$AS_PORT} {
			# introspection_endpoint is discovered from the AS metadata
			client_id {\$INTEROP_CC_ID}
			client_secret {env.INTEROP_CC_SECRET}
			introspection_cache 2s
		}
		require_scope mcp:read
		$TOOL_LINE
	}
	# The MCP server answers on /mcp only. A top-level rewrite would sort
	# before mcp_auth (and /opaque requests would then be checked as /mcp
	# ones); inside handle it runs after mcp_auth, then falls through to
	# reverse_proxy.
	handle /opaque* {
		rewrite * /mcp
	}
	$LOG_BLOCK
	reverse_proxy 127.0.0.1:{\$MCP_PORT} {
		# SDK servers on localhost reject a public Host (DNS-rebinding
		# protection); send them their own address.
		header_up Host {upstream_hostport}
		header_up X-User {http.auth.user.id}
	}
}
EOF
export XDG_DATA_HOME="$WORK/xdg-data" XDG_CONFIG_HOME="$WORK/xdg-config"
"$CADDY" run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
CADDY_PID=$!
PIDS+=("$CADDY_PID")
if ! wait_for_port "$GW_PORT" 30 "$CADDY_PID"; then
  echo "caddy did not come up; its log:" >&2
  tail -40 "$WORK/caddy.log" >&2
  echo "FAIL gateway/start: caddy did not start (see above)"
  echo "0 passed, 1 failed"
  exit 1
fi

# ---- scenarios
RESULTS="$WORK/results"
: >"$RESULTS"
# part NAME TIMEOUT CMD...: runs a scenario runner, passes its ok/FAIL/skip/# lines through
part() {
  local name=$1 secs=$2
  shift 2
  [[ " $ONLY " == *" $name "* ]] || return 0
  local out rc=0
  out=$(timeout "$secs" "$@" 2>>"$WORK/$name.err") || rc=$?
  printf '%s\n' "$out" | grep -E '^(ok |FAIL |skip |# )' | tee -a "$RESULTS" || true
  if ((rc != 0)) && ! printf '%s\n' "$out" | grep -q '^FAIL '; then
    echo "FAIL $name/runner: exited $rc: $(tail -c 400 "$WORK/$name.err" | tr '\n' ' ')" | tee -a "$RESULTS"
  fi
}

part checks 60 "$NODE" "$HERE/checks.mjs" "$MCP_URL" "$ISSUER"
part client 90 "$NODE" "$HERE/client.mjs" "$MCP_URL"
part opaque 60 "$NODE" "$HERE/opaque.mjs" "$OPAQUE_URL" "$MCP_URL" "$ISSUER" 2
CLIENT_PREFIX=opaque/sdk-client EXPECT_TOKEN=opaque part opaque 90 "$NODE" "$HERE/client.mjs" "$OPAQUE_URL"
if [[ " $ONLY " == *" goclient "* ]]; then
  if command -v go >/dev/null 2>&1 && (cd "$HERE/goclient" && go build -o "$WORK/goclient" .) 2>>"$WORK/goclient.err"; then
    part goclient 90 "$WORK/goclient" "$MCP_URL"
  else
    echo "FAIL go-client/build: $(tail -c 400 "$WORK/goclient.err" 2>/dev/null | tr '\n' ' ')" | tee -a "$RESULTS"
  fi
fi
if [[ " $ONLY " == *" inspector "* ]]; then
  TOKEN=$("$NODE" "$HERE/token.mjs" "$ISSUER" "$MCP_URL" "mcp:read" 2>>"$WORK/inspector.err")
  part inspector 120 "$NODE" "$HERE/inspector.mjs" header "$MCP_URL" "$TOKEN"
  part inspector 120 "$NODE" "$HERE/inspector.mjs" oauth "$MCP_URL"
fi
if [[ " $ONLY " == *" conformance "* ]]; then
  TOKEN=$("$NODE" "$HERE/token.mjs" "$ISSUER" "$MCP_URL" "mcp:read" 2>>"$WORK/conformance.err")
  "$NODE" "$HERE/forwarder.mjs" "$FWD_PORT" "http://127.0.0.1:$GW_PORT" "$TOKEN" >"$WORK/forwarder.log" 2>&1 &
  PIDS+=($!)
  wait_for_line "$WORK/forwarder.log" '^FWD ready' 20 "${PIDS[-1]}"
  part conformance 200 "$NODE" "$HERE/conformance.mjs" "http://127.0.0.1:$FWD_PORT/mcp" conformance all
fi

PASSED=$(grep -c '^ok ' "$RESULTS" || true)
FAILED=$(grep -c '^FAIL ' "$RESULTS" || true)
if ((FAILED > 0)); then
  echo "# caddy errors (last 15):" >&2
  grep '"level":"error"' "$WORK/caddy.log" | tail -15 | sed 's/^/#   /' >&2 || true
fi
echo "# elapsed $(($(date +%s) - START))s"
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
