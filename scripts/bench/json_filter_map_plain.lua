-- Baseline for json_filter_map.lua: the same work as a plain LuaJIT loop, io.lines and
-- lua-cjson decode/encode (run with luajit, not sluice).
local cjson = require "cjson"
local decode, encode = cjson.decode, cjson.encode
local out = assert(io.open(os.getenv("OUT") or "out.jsonl", "w"))
for line in io.lines(os.getenv("IN") or "bids.jsonl") do
  local b = decode(line)
  if b.price > 100 then
    out:write(encode({ auction = b.auction, eur = b.price * 0.92, ts = b.ts }), "\n")
  end
end
out:close()
