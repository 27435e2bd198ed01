-- The HTTP sink's bench: N generated bids (~80 bytes of JSON each) POSTed in batches of
-- BATCH to URL (env N, URL, BATCH, PARALLEL); with URL unset, the same records into a
-- JSON file OUT instead, for the cost of generating and encoding them without HTTP.
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 1000000
local channels = { "web", "ios", "android", "partner" }

local sink
if os.getenv("URL") then
  sink = sl.sink.http { url = os.getenv("URL"), batch = tonumber(os.getenv("BATCH")) or 500,
    parallel = tonumber(os.getenv("PARALLEL")) or 1 }
else
  sink = sl.sink.file { path = os.getenv("OUT") or "bids-http.jsonl", format = "json" }
end

sl.source.generator { count = N, fn = function(i)
  return { auction = 1000 + i % 10007, bidder = 5000 + i % 7919, price = (i * 37 % 20000) / 100,
           channel = channels[i % 4 + 1], ts = 1700000000000 + i * 3 }
end }
  :sink(sink)
