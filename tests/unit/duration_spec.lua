-- Specs for lua/sluice/duration.lua: the duration forms of the contract.
local duration = require "sluice.duration"

describe("duration.parse", function()
  it("reads numbers as milliseconds", function()
    assert.equal(250, duration.parse(250))
    assert.equal(0, duration.parse(0))
  end)

  it("reads every unit of the contract", function()
    assert.equal(250, duration.parse("250ms"))
    assert.equal(10000, duration.parse("10s"))
    assert.equal(300000, duration.parse("5m"))
    assert.equal(7200000, duration.parse("2h"))
    assert.equal(86400000, duration.parse("1d"))
    assert.equal(1500, duration.parse("1.5s"))
  end)

  it("rejects anything else and names the bad value", function()
    for _, bad in ipairs({ "10x", "s", "", "ten seconds", -1, "10 parsecs" }) do
      local ms, err = duration.parse(bad)
      assert.is_nil(ms)
      assert.truthy(err:find(tostring(bad), 1, true), err)
    end
    local _, err = duration.parse({})
    assert.truthy(err:find("bad duration", 1, true))
  end)
end)
