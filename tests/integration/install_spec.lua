-- make install: the installed binary finds its Lua library by itself, from any directory.
local h = require "tests.helpers"

describe("make install", function()
  after_each(h.cleanup)

  it("installs a sluice that runs scripts without environment variables", function()
    local prefix = h.tmpdir()
    local ok = os.execute("make -s install PREFIX=" .. h.q(prefix) .. " >/dev/null 2>&1")
    assert.truthy(ok == 0 or ok == true, "make install failed")
    local dir = h.tmpdir()
    h.write(dir .. "/job.lua", [[
local sl = require "sluice"
sl.source.values { 1, 2, 3 }:map(function(x) return x * 7 end):sink(sl.sink.stdout {})
]])
    local p = io.popen("cd " .. h.q(dir) .. " && env -u LUA_PATH -u LUA_CPATH "
      .. h.q(prefix .. "/bin/sluice") .. " run job.lua 2>&1")
    local out = p:read("*a")
    p:close()
    assert.equal("7\n14\n21\n", out)
  end)
end)
