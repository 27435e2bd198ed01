-- weblog_per_host_spec.lua -- weblog_per_host.lua run by a spec: sl.testing.run gives its
-- source "requests" a few records of our own and returns what its named operator and its
-- sink emitted. Run: ./sluice test scripts/examples
local sl = require "sluice"

-- the script beside this spec, from wherever `sluice test` runs
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local SCRIPT = here .. "weblog_per_host.lua"

local T0 = 1699999980000                      -- the start of a minute

local function request(host, s, status, bytes, ms)
  return { host = host, ts = T0 + s * 1000, status = status, bytes = bytes, ms = ms }
end

local function by_window_and_key(a, b)
  if a.window_start ~= b.window_start then return a.window_start < b.window_start end
  return a.key < b.key
end

describe("weblog_per_host.lua", function()
  it("counts requests, errors and bytes per host and minute", function()
    local out = sl.testing.run(SCRIPT, { inputs = { requests = {
      request("api", 1, 200, 100, 10),
      request("api", 2, 503, 50, 30),
      request("web", 3, 200, 10, 5),
      request("api", 61, 200, 7, 1),
    } } })
    local rows = out.per_host_minute
    table.sort(rows, by_window_and_key)
    assert.equal(3, #rows)
    assert.same({ "api", T0, 2, 1, 150 },
      { rows[1].key, rows[1].window_start, rows[1].requests, rows[1].errors, rows[1].bytes })
    assert.same({ "web", T0, 1, 0, 10 },
      { rows[2].key, rows[2].window_start, rows[2].requests, rows[2].errors, rows[2].bytes })
    assert.same({ "api", T0 + 60000, 1, 0, 7 },
      { rows[3].key, rows[3].window_start, rows[3].requests, rows[3].errors, rows[3].bytes })
    -- what the table on stdout would show: the same rows (nothing is printed)
    assert.equal(3, #out["sink.stdout"])
  end)

  it("takes the window size from --set window=...", function()
    local out = sl.testing.run(SCRIPT, { params = { window = "10s" }, inputs = { requests = {
      request("cdn", 1, 200, 1, 1), request("cdn", 11, 200, 1, 1), request("cdn", 12, 200, 1, 1),
    } } })
    local rows = out.per_host_minute
    table.sort(rows, by_window_and_key)
    assert.same({ 1, 2 }, { rows[1].requests, rows[2].requests })
    assert.equal(10000, rows[1].window_end - rows[1].window_start)
  end)
end)
