-- The `table` format on a terminal, driven through tmux: rows show as they come, and the
-- header comes again when a column widens. (On a pipe it prints at the end and every
-- 1000 rows: run_spec and explore_spec.)

local h = require "tests.helpers"

local function sh(cmd)
  return os.execute(cmd .. " >/dev/null 2>&1") == 0
end

local function have_tmux()
  return sh("command -v tmux")
end

local SCRIPT = [[
local sl = require "sluice"
sl.source.generator { rate = 20, fn = function(i) return { i = i * 7, name = ("x"):rep(i) } end }
  :sink(sl.sink.stdout { format = "table" })
]]

describe("the table format on a terminal", function()
  local tmux

  after_each(function()
    if tmux then sh(tmux .. "kill-server") end
    tmux = nil
    h.cleanup()
  end)

  it("prints rows as they come, and the header again when a column widens", function()
    if not have_tmux() then pending("tmux is not installed") return end
    local script = h.script(SCRIPT)
    tmux = "tmux -L " .. h.q("sluice-table-" .. script:match("sluice%-test%.(%w+)")) .. " "
    assert(sh(tmux .. "new-session -d -x 100 -y 40 -s t " .. h.q(string.format(
      "cd %s && ASAN_OPTIONS=detect_leaks=0 %s run %s; sleep 60", h.q(os.getenv("PWD")),
      h.q(h.bin()), h.q(script)))))
    local screen
    for _ = 1, 200 do
      local p = io.popen(tmux .. "capture-pane -p -t t 2>/dev/null")
      screen = p:read("*a")
      p:close()
      if screen:find("35  xxxxx\n", 1, true) then break end
      os.execute("sleep 0.05")
    end
    -- five rows within a second or so of a 20 records/s source, long before 1000 rows;
    -- a header each time a column had to widen
    h.contains(screen, "i  name\n-  ----\n7  x\ni   name\n--  ----\n14  xx\n21  xxx\n" ..
      "28  xxxx\ni   name\n--  -----\n35  xxxxx\n", "screen")
  end)
end)
