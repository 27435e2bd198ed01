-- State expiry from the command line: ttl() in a wrong place is reported at the script's
-- line by `sluice check` and `sluice run` (exit 2, nothing written); a script with a ttl
-- and on_expire runs to the output the reference (docs/reference.md, "State expiry") says.
local h = require "tests.helpers"
local sl = require "sluice"

describe("ttl in a script", function()
  after_each(h.cleanup)

  for _, cmd in ipairs { "check", "run" } do
    it("after a window: sluice " .. cmd .. " reports the line and exits 2", function()
      local path = "tests/fixtures/ttl_misplaced.lua"
      local out = h.path(h.dir(), "out.jsonl")
      local res = h.run(cmd .. " " .. h.q(path), { env = { OUT = out } })
      h.expect_code(res, 2)
      local l = h.find_located(res.stderr, path, 8)
      assert(l, "expected " .. path .. ":8: on stderr\n" .. h.describe(res))
      h.contains(l, "ttl(): expected right after a keyed reduce, aggregate or process", "the message")
      assert(not h.exists(out), "the output file was created: " .. out)
    end)
  end

  it("runs: keys expire d after their last record, on_expire emits at the expiry time", function()
    local dir = h.dir()
    local input = h.path(dir, "in.jsonl")
    h.write(input, table.concat({
      '{"user":"ann","ts":1000}', '{"user":"bob","ts":2000}', '{"user":"ann","ts":8000}',
      '{"user":"cid","ts":30000}', '{"user":"ann","ts":30000}', "" }, "\n"))
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.file { path = %q, format = "json" }
  :timestamp("ts"):key_by("user")
  :process {
    init = function(ctx) ctx.state.n = 0 end,
    on_record = function(ctx) ctx.state.n = ctx.state.n + 1 end,
    on_expire = function(ctx) ctx:emit { user = ctx.key, n = ctx.state.n } end,
  }:ttl("10s")
  :window_all(sl.tumbling "1s")
  :apply(function(_, w, rs)
    local list = {}
    for i, r in ipairs(rs) do list[i] = { user = r.user, n = r.n, at = w.window_start } end
    return list
  end)
  :sink(sl.sink.stdout { format = "json" })
]], input))
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 0)
    -- bob expires at 12000, ann at 18000 (her last record at 8000); both before cid's
    -- record at 30000 is stepped; at the end of input ann (again) and cid at 40000
    local got = h.json_lines(res.stdout, sl.json.decode)
    assert.same({ { user = "bob", n = 1, at = 12000 }, { user = "ann", n = 2, at = 18000 },
      { user = "cid", n = 1, at = 40000 }, { user = "ann", n = 1, at = 40000 } }, got)
  end)
end)
