-- bench/post.lua: wrk script for `make bench` (see bench/bench.py).
--
-- Every connection POSTs the same no-op task over keep-alive:
--     POST /api/v1/tasks  {"kind":"echo","args":{"i":1}}
-- Each wrk thread counts the statuses it receives and remembers the id of
-- every task acknowledged with 201 (from the Location header, else the body).
-- wrk gives each thread its own Lua state, so done() (which runs in yet
-- another state) collects the counters through the thread handles kept by
-- setup(), prints one machine-readable line for bench.py:
--     BENCH_RESULT k=v k=v ...
-- and, if the environment names a file in BENCH_IDS_FILE, writes the
-- acknowledged ids there, one per line, so that bench.py can check each of
-- them against the database.

wrk.method = "POST"
wrk.path   = "/api/v1/tasks"
wrk.body   = '{"kind":"echo","args":{"i":1}}'
wrk.headers["Content-Type"] = "application/json"

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end

-- setup / done side ------------------------------------------------------

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

-- running side (one copy per thread) -------------------------------------

local req

function init(args)
   req      = wrk.format()       -- the request never changes: build it once
   created  = 0                  -- 201 responses
   other    = 0                  -- any other status
   noid     = 0                  -- 201 without a readable task id
   statuses = {}                 -- status -> count, for the non-201 ones
   ids      = {}                 -- ids acknowledged with 201
end

function request()
   return req
end

function response(status, headers, body)
   if status == 201 then
      created = created + 1
      local loc = headers["Location"] or headers["location"]
      local id = loc and loc:match("(%d+)$")
      if not id and body then
         id = body:match('"id"%s*:%s*(%d+)')
      end
      if id then
         ids[#ids + 1] = tonumber(id)
      else
         noid = noid + 1
      end
   else
      other = other + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

-- done (runs in the setup state, after every thread has stopped) ----------

function done(summary, latency, requests)
   local t_created, t_other, t_noid = 0, 0, 0
   local st = {}
   local path = os.getenv("BENCH_IDS_FILE")
   local f = path and path ~= "" and io.open(path, "w") or nil
   for _, thread in ipairs(threads) do
      t_created = t_created + (thread:get("created") or 0)
      t_other   = t_other   + (thread:get("other") or 0)
      t_noid    = t_noid    + (thread:get("noid") or 0)
      for code, n in pairs(thread:get("statuses") or {}) do
         st[code] = (st[code] or 0) + n
      end
      if f then
         local tids = thread:get("ids") or {}
         for i = 1, #tids do
            f:write(string.format("%d\n", tids[i]))
         end
      end
   end
   if f then f:close() end

   local parts = {}
   for code, n in pairs(st) do
      parts[#parts + 1] = string.format("%d:%d", code, n)
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT created=%d other=%d noid=%d statuses=%s requests=%d " ..
      "duration_us=%d bytes=%d err_connect=%d err_read=%d err_write=%d " ..
      "err_status=%d err_timeout=%d lat_p50_us=%.1f lat_p90_us=%.1f " ..
      "lat_p99_us=%.1f lat_p999_us=%.1f lat_max_us=%.1f lat_mean_us=%.1f\n",
      t_created, t_other, t_noid, (#parts > 0 and table.concat(parts, ",") or "-"),
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean))
end
