-- --memory-limit SIZE (lua/sluice/memory.lua, host/memory.c): a job that allocates without
-- bound stops with status 1 and a message that names the operator, well before the
-- process could grow to gigabytes and meet the kernel's OOM killer; whether its function
-- never returns or its state grows batch by batch (stopped at the allocation that passes
-- the limit); and, stopped cleanly by the check every 100 ms, a process that passes it
-- with what C holds.
local h = require "tests.helpers"

-- The MiB a message says the process holds.
local function held_mib(err)
  return tonumber(err:match("the process holds ([%d.]+) MiB"))
end

describe("--memory-limit", function()
  after_each(h.cleanup)

  it("stops a function that allocates without bound and never returns, naming it", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.generator { fn = function(i) return { i = i } end }
  :filter(function(r) return r.i > 0 end)
  :map(function(r) local t = {} while true do t[#t + 1] = { r.i, "x" .. #t } end end)
  :sink(sl.sink.null())
]])
    local res = h.run("run " .. h.q(script) .. " --memory-limit 200MB --control none")
    h.expect_code(res, 1)
    h.contains(res.stderr, "sluice: memory limit 200 MiB reached in source.generator at " ..
      script .. ":2, filter at " .. script .. ":3, map at " .. script .. ":4 (one fused " ..
      "stage): the Lua heap would grow to ", "stderr")
    h.contains(res.stderr, "exiting at once (status 1)\n", "stderr")
    local held = held_mib(res.stderr)
    assert.truthy(held and held < 1024, res.stderr)
  end)

  it("stops a job whose state grows batch by batch, naming the operator", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.generator { rate = 100, fn = function(i) return { i = i, k = 1 } end }
  :key_by("k")
  :process { on_record = function(ctx, r)
    ctx.state[#ctx.state + 1] = string.rep("x", 1000000) .. r.i
  end }
  :sink(sl.sink.null())
]])
    local res = h.run("run " .. h.q(script) .. " --memory-limit 150MB --control none")
    h.expect_code(res, 1)
    h.contains(res.stderr, "sluice: memory limit 150 MiB ", "stderr")
    h.contains(res.stderr, " in process at " .. script .. ":4", "stderr")
    local held = held_mib(res.stderr)
    assert.truthy(not held or held < 1024, res.stderr)
  end)

  it("stops cleanly, its sinks closed, when the rest of the process passes the limit", function()
    -- the code, C's buffers and the sanitizers' shadow alone hold more than 4 MiB
    local out = h.path(h.dir(), "out.jsonl")
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { rate = 1000, fn = function(i) return { i = i } end }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    local res = h.run("run " .. h.q(script) .. " --memory-limit 4MB --control none")
    h.expect_code(res, 1)
    assert.truthy(res.stderr:find("^sluice: memory limit 4 MiB passed: the process holds [%d.]+ " ..
      "MiB, [%d.]+ MiB of it Lua data; the rest is C's %(input buffers, output queued for " ..
      "slow sinks, aggregates%)\n$"), res.stderr)
    local text = h.read(out)
    assert.truthy(text == "" or text:sub(-1) == "\n", text)
  end)

  it("checks its value", function()
    local script = h.script("local sl = require 'sluice'\nsl.source.values { 1 }:sink(sl.sink.null())\n")
    local res = h.run("run " .. h.q(script) .. " --memory-limit lots")
    h.expect_code(res, 2)
    h.contains(res.stderr, "sluice: --memory-limit: expected a size such as 200MB, 2GB or a " ..
      "number of bytes, got lots", "stderr")
  end)
end)
