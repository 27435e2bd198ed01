-- Benchmark: state that expires runs in bounded memory. N records (env N), each under a key
-- never seen before, one every STEP ms of event time, into a rolling aggregate {count, sum}
-- with ttl(TTL) (TTL=0: no ttl, for contrast). Keys are distinct integers spread over 2^32
-- (i * 2654435761 mod 2^32), kept in a table's hash part as most keys are, not its array
-- part. At each tenth of the input it prints on stderr a Markdown row: the ttl, records so
-- far, resident memory (/proc/self/status VmRSS) and the aggregate's live keys (the keys
-- column of job:metrics()).
local sl = require "sluice"
local runtime = require "sluice.runtime"
local inspect = require "sluice.inspect"
local N = tonumber(os.getenv("N")) or 10000000
local STEP = tonumber(os.getenv("STEP")) or 0.1   -- ms of event time between records
local TTL = os.getenv("TTL") or "10s"

local function rss_mb()
  local f = assert(io.open("/proc/self/status", "r"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")) / 1024
end

local function live_keys(job)
  for _, row in ipairs(inspect.metrics(job)) do
    if row.operator == "counts" then return row.keys end
  end
end

local every = math.floor(N / 10)
local next_at = every
runtime.defaults.after_batch = function(job)
  if job.records_in >= next_at then
    next_at = next_at + every
    io.stderr:write(string.format("| %s | %d | %.0f MB | %d |\n",
      TTL == "0" and "none" or TTL, job.records_in, rss_mb(), live_keys(job)))
  end
end

local counts = sl.source.generator { count = N, fn = function(i)
  return { k = i * 2654435761 % 4294967296, v = i % 100, ts = 1700000000000 + i * STEP }
end }
  :timestamp("ts")
  :key_by("k")
  :aggregate { n = sl.count(), s = sl.sum "v" }:name("counts")
if TTL ~= "0" then counts = counts:ttl(TTL) end
counts:sink(sl.sink.null())
