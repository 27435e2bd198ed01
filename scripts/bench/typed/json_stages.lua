-- typed_stages.sh's job: json_filter_map.lua cut short after a stage (env STAGE), on
-- records typed by sl.schema when SCHEMA=1, input IN:
--   decode   source -> sink.null: reading, framing and decoding
--   lua      source -> filter -> map -> sink.null: and the two Lua functions
--   encode   the whole job, its file sink writing to OUT (typed_stages.sh: /dev/null, then
--            a file): and encoding (and writing)
local sl = require "sluice"
local STAGE = os.getenv("STAGE") or "encode"

local schema = nil
if os.getenv("SCHEMA") == "1" then
  schema = sl.schema { auction = "i64", bidder = "i64", price = "f64", channel = "string",
                       ts = "i64" }
end

local bids = sl.source.file { path = os.getenv("IN"), format = "json", schema = schema }
if STAGE == "decode" then
  bids:sink(sl.sink.null())
  return
end
local out = bids
  :filter(function(b) return b.price > 100 end)
  :map(function(b) return { auction = b.auction, eur = b.price * 0.92, ts = b.ts } end)
if STAGE == "lua" then
  out:sink(sl.sink.null())
else
  out:sink(sl.sink.file { path = os.getenv("OUT"), format = "json" })
end
