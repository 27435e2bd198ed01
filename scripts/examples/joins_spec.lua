-- joins_spec.lua -- joins.lua run by a spec: its sources "orders" and "payments" get records
-- of our own; users.csv stays the table. Run: ./sluice test scripts/examples
local sl = require "sluice"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local SCRIPT = here .. "joins.lua"
local T0 = 1700000000000

describe("joins.lua", function()
  it("pairs each order with a payment within 10 minutes, else says unpaid, with its user", function()
    local out = sl.testing.run(SCRIPT, { inputs = {
      orders = {
        { order = 1, user = 2, amount = 10, ts = T0 },
        { order = 2, user = 9, amount = 20, ts = T0 + 1000 },
        { order = 3, user = 1, amount = 30, ts = T0 + 2000 },
      },
      payments = {
        { order = 1, ts = T0 + 600000 },          -- exactly 10 minutes: still in time
        { order = 3, ts = T0 + 2000 + 600001 },   -- a millisecond too late
      },
    } })
    local rows = out["sink.stdout"]
    table.sort(rows, function(a, b) return a.order < b.order end)
    assert.same({
      { order = 1, user = 2, amount = 10, status = "paid", paid_after_s = 600, name = "bob",
        country = "IT" },
      { order = 2, user = 9, amount = 20, status = "unpaid" },
      { order = 3, user = 1, amount = 30, status = "unpaid", name = "ann", country = "NO" },
    }, rows)
  end)
end)
