-- forward.lua's declarations: sl.source.forward and sl.sink.forward check their options at
-- the user's line and give the specs the runtime opens (their running halves are tested
-- over sockets in tests/integration/forward_spec.lua).
local sl = require "sluice"
local graph = require "sluice.graph"
local forward = require "sluice.forward"

local here = debug.getinfo(1, "S").source:sub(2)

-- The message f raised (it must raise).
local function mistake(f)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected a mistake")
  return err
end

describe("forward declarations", function()
  before_each(function() graph.begin() end)

  it("source: listen and max_entry, with their defaults", function()
    assert.are.same({ type = "forward", listen = "0.0.0.0:24224", max_entry = 64 * 1024 * 1024,
      label = "source.forward 0.0.0.0:24224" }, forward.source_spec { listen = "0.0.0.0:24224" })
    assert.are.equal(1000, forward.source_spec { listen = "h:1", max_entry = 1000 }.max_entry)
  end)

  it("sink: connect, tag, high and ack_timeout, with their defaults", function()
    assert.are.same({ type = "forward", connect = "fluentd:24224", tag = "sluice",
      high = 8 * 1024 * 1024, ack_timeout = 30000, label = "sink.forward fluentd:24224" },
      forward.sink_spec { connect = "fluentd:24224" })
    local s = forward.sink_spec { connect = "h:1", tag = "app.out", high = 4096,
      ack_timeout = "2s" }
    assert.are.same({ "app.out", 4096, 2000 }, { s.tag, s.high, s.ack_timeout })
  end)

  it("mistakes are reported at the user's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local err = mistake(function() sl.source.forward { listen = "nohost" } end)
    assert.are.equal(here .. ":" .. line .. ': source.forward(): listen is required (a ' ..
      'string "host:port"), got nohost', err)
    err = mistake(function() sl.source.forward { listen = "h:1", max_entry = 0.5 } end)
    assert.truthy(err:find("source.forward(): max_entry must be a whole number of bytes >= 1, " ..
      "got 0.5", 1, true), err)
    err = mistake(function() sl.sink.forward { connect = "h:1", tag = "" } end)
    assert.truthy(err:find("sink.forward(): tag must be a non-empty string, got ", 1, true), err)
    err = mistake(function() sl.sink.forward { connect = "h:1", ack_timeout = "soon" } end)
    assert.truthy(err:find("sink.forward(): ack_timeout: ", 1, true), err)
    err = mistake(function() sl.sink.forward { connect = "h:1", tga = "x" } end)
    assert.truthy(err:find("sink.forward(): unknown option tga (did you mean tag?)", 1, true), err)
  end)
end)
