-- The Lua heap (host/vm.c): mimalloc's by default, LuaJIT's own allocator with
-- SLUICE_HEAP=luajit. A job keyed over 2 workers, with windows whose state grows and is
-- freed pane after pane, gives the counts of a model on either heap, and --memory-limit
-- still stops a function that allocates without bound on LuaJIT's (memory_limit_spec
-- checks the default heap).
local h = require "tests.helpers"
local cjson = require "cjson"

local N, KEYS = 60000, 37

-- k -> window start -> { n, s }, as the job below counts them
local function model()
  local want = {}
  for i = 1, N do
    local k, ts = "k" .. (i % KEYS), 1700000000000 + i * 10
    local start = ts - ts % 1000
    want[k] = want[k] or {}
    local w = want[k][start] or { n = 0, s = 0 }
    w.n, w.s = w.n + 1, w.s + i % 7
    want[k][start] = w
  end
  return want
end

describe("the Lua heap", function()
  after_each(h.cleanup)

  for _, heap in ipairs({ "default", "luajit" }) do
    local env = heap == "luajit" and { SLUICE_HEAP = "luajit" } or nil
    it("counts keyed windows on 2 workers as the model does, heap " .. heap, function()
      local out = h.path(h.dir(), "out.jsonl")
      local script = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = %d, fn = function(i)
  return { k = "k" .. (i %% %d), v = i %% 7, ts = 1700000000000 + i * 10 } end }
  :timestamp("ts")
  :key_by("k"):window(sl.tumbling "1s"):aggregate { n = sl.count(), s = sl.sum "v" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], N, KEYS, out))
      local res = h.run("run " .. h.q(script) .. " --workers 2 --control none", { env = env })
      h.expect_code(res, 0)
      local want, got = model(), 0
      for _, line in ipairs(h.lines(h.read(out))) do
        local r = cjson.decode(line)
        local w = want[r.key] and want[r.key][r.window_start]
        assert.truthy(w, "a window the model has not: " .. line)
        assert.are.same({ n = w.n, s = w.s }, { n = r.n, s = r.s })
        want[r.key][r.window_start] = nil
        got = got + 1
      end
      for k, windows in pairs(want) do
        assert.is_nil(next(windows), "a window of " .. k .. " missing")
      end
      assert.truthy(got > KEYS * 500, "windows: " .. got)
    end)
  end

  -- (on the default heap: memory_limit_spec)
  it("stops a function that allocates without bound under --memory-limit, heap luajit",
    function()
      local script = h.script([[
local sl = require "sluice"
sl.source.generator { fn = function(i) return { i = i } end }
  :map(function(r) local t = {} while true do t[#t + 1] = { r.i, "x" .. #t } end end)
  :sink(sl.sink.null())
]])
      local res = h.run("run " .. h.q(script) .. " --memory-limit 200MB --control none",
        { env = { SLUICE_HEAP = "luajit" } })
      h.expect_code(res, 1)
      h.contains(res.stderr, "sluice: memory limit 200 MiB reached in ", "stderr")
      h.contains(res.stderr, "exiting at once (status 1)\n", "stderr")
    end)
end)
