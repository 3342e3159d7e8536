-- wrk script: the same MCP tools/call POST on every request, with the
-- bearer token from $BENCH_TOKEN. No request()/response() callbacks, so wrk
-- builds the request once and costs as little as possible.
local token = os.getenv("BENCH_TOKEN") or error("BENCH_TOKEN is not set")
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"bench"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
