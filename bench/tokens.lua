-- wrk script: cycles through the tokens in $BENCH_TOKENS (one per line),
-- one per request, and prints the status-code distribution at the end as
--   status: 401=12345 ...
local path = os.getenv("BENCH_TOKENS") or error("BENCH_TOKENS is not set")
local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"bench"}}}'
local reqs = {}
local i = 0
local threads = {}
counts = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

function init(args)
  for line in io.lines(path) do
    if #line > 0 then
      reqs[#reqs + 1] = wrk.format("POST", nil,
        {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. line}, body)
    end
  end
  if #reqs == 0 then error("no tokens in " .. path) end
  -- Threads start at different places in the list.
  i = ((thread_no or 1) - 1) * math.floor(#reqs / 2) % #reqs
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  local k = tostring(status)
  counts[k] = (counts[k] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts") or {}) do
      total[k] = (total[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = k .. "=" .. v end
  table.sort(parts)
  io.write("status: " .. table.concat(parts, " ") .. "\n")
end
