-- The pipeline of API.md ("A pipeline script"), word for word, on a real file.
local h = require "tests.helpers"
local sl = require "sluice"

local SCRIPT = [[
local sl = require "sluice"

sl.source.file { path = "bids.jsonl", format = "json" }
  :filter(function(b) return b.price > 100 end)
  :timestamp("ts", { out_of_orderness = "2s" })
  :key_by("auction")
  :window(sl.tumbling "10s")
  :aggregate { bids = sl.count(), top = sl.max "price" }:name("per_auction")
  :sink(sl.sink.file { path = "out.jsonl", format = "json" })
]]

describe("the API.md pipeline", function()
  after_each(h.cleanup)

  it("runs as written and gives one result per auction and window", function()
    local dir = h.tmpdir()
    local lines = {}
    -- auctions 1 and 2, a bid every second for 25 s, prices 50..290; bid 12 out of order
    for i = 0, 24 do
      local ts = 1700000000000 + i * 1000
      if i == 12 then ts = ts - 3000 end
      lines[#lines + 1] = sl.json.encode { auction = i % 2 + 1, price = 50 + i * 10, ts = ts }
    end
    h.write(dir .. "/bids.jsonl", table.concat(lines, "\n") .. "\n")
    h.write(dir .. "/job.lua", SCRIPT)
    local ok = os.execute("cd " .. h.q(dir) .. " && " .. h.q(os.getenv("PWD") .. "/" .. h.bin():gsub("^%./", ""))
      .. " run job.lua >out.log 2>&1")
    assert.truthy(ok == 0 or ok == true, h.read(dir .. "/out.log"))
    local got = {}
    for line in (h.read(dir .. "/out.jsonl") or ""):gmatch("[^\n]+") do
      local r = sl.json.decode(line)
      got[#got + 1] = string.format("%d@%d: %d bids, top %d", r.key, r.window_start - 1700000000000,
        r.bids, r.top)
    end
    table.sort(got)
    -- Bids i = 6.. pass the filter (price > 100); even i are auction 1, odd auction 2.
    -- Bid 12 has event time 9 s, but arrives when the watermark is 11 s - 2 s = 9 s, before
    -- window [0 s, 10 s) fires (at 10 s): it counts there, so auction 1 has 3 bids in it.
    assert.same({
      "1@0: 3 bids, top 170",          -- i = 6, 8, 12
      "1@10000: 4 bids, top 230",      -- i = 10, 14, 16, 18
      "1@20000: 3 bids, top 290",      -- i = 20, 22, 24
      "2@0: 2 bids, top 140",          -- i = 7, 9
      "2@10000: 5 bids, top 240",      -- i = 11 .. 19
      "2@20000: 2 bids, top 280",      -- i = 21, 23
    }, got)
  end)
end)
