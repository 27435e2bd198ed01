-- sluice repl in a real terminal, driven through tmux (send-keys, capture-pane): line
-- editing through readline, history kept across sessions, Tab completion, Ctrl-C.

local h = require "tests.helpers"

local function have_tmux()
  return os.execute("command -v tmux >/dev/null 2>&1") == 0
end

local function sh(cmd)
  return os.execute(cmd .. " >/dev/null 2>&1") == 0
end

-- A tmux server of its own (-L), so nothing else's sessions are touched.
local function terminal(dir, history)
  local t, n = {}, 0
  local tmux
  -- Each start has a server of its own, so it never races the end of the one before.
  function t.start()
    n = n + 1
    tmux = "tmux -L " .. h.q("sluice-spec-" .. dir:match("[^/]+$") .. "-" .. n) .. " "
    assert(sh(tmux .. "new-session -d -x 100 -y 30 -s repl " .. h.q(string.format(
      "cd %s && SLUICE_HISTORY=%s ASAN_OPTIONS=detect_leaks=0 %s repl", h.q(os.getenv("PWD")),
      h.q(history), h.q(h.bin())))))
  end
  function t.keys(...)
    local args = {}
    for i = 1, select("#", ...) do args[i] = h.q((select(i, ...))) end
    assert(sh(tmux .. "send-keys -t repl " .. table.concat(args, " ")))
  end
  function t.screen()
    local p = io.popen(tmux .. "capture-pane -p -t repl 2>/dev/null")
    local s = p:read("*a")
    p:close()
    return s
  end
  -- Waits until the screen shows `text` (plain), and returns the screen.
  function t.wait(text)
    local s
    for _ = 1, 200 do
      s = t.screen()
      if s:find(text, 1, true) then return s end
      os.execute("sleep 0.05")
    end
    error(string.format("the terminal never showed %q; it shows:\n%s", text, s), 2)
  end
  function t.stop() sh(tmux .. "kill-server") end
  return t
end

describe("sluice repl in a terminal", function()
  local t, history

  before_each(function()
    if not have_tmux() then return end
    local dir = h.tmpdir()
    history = h.path(dir, "history")
    t = terminal(dir, history)
    t.start()
    t.wait("sl>")
  end)

  after_each(function()
    if t then t.stop() end
    t = nil
    h.cleanup()
  end)

  it("prompts, evaluates, and keeps the history across sessions", function()
    if not t then pending("tmux is not installed") return end
    t.keys("6 * 7", "Enter")
    t.wait("42")
    t.keys("C-d")
    for _ = 1, 200 do
      if (h.read(history) or ""):find("6 * 7", 1, true) then break end
      os.execute("sleep 0.05")
    end
    h.contains(h.read(history) or "", "6 * 7", "history file")
    t.stop()
    t.start()
    t.wait("sl>")
    t.keys("Up")
    t.wait("sl> 6 * 7")
    t.keys("Enter")
    local screen = t.wait("42")
    h.contains(screen, "sl> 6 * 7\n42", "screen")
  end)

  it("completes sl. names and stream methods with Tab", function()
    if not t then pending("tmux is not installed") return end
    t.keys("sl.sou", "Tab")
    t.wait("sl> sl.source")
    t.keys(".val", "Tab")
    t.wait("sl> sl.source.values")
    t.keys("{ 1, 2 }:ma", "Tab")
    t.wait("sl> sl.source.values{ 1, 2 }:map")
    t.keys("(function(x) return x * 10 end):collect()", "Enter")
    t.wait("{ 10, 20 }")
  end)

  it("Ctrl-C stops an endless :collect(), which returns the records so far", function()
    if not t then pending("tmux is not installed") return end
    t.keys("r = sl.source.generator { rate = 1000 }:peek(function(i) " ..
      "if i == 1 then print('started') end end):collect()", "Enter")
    t.wait("started")
    t.keys("C-c")
    t.wait("interrupted: the job stops")
    t.keys("#r > 0", "Enter")
    t.wait("true\nsl>")
  end)

  it("Ctrl-C stops any loop, one LuaJIT would compile too, and never quits; Ctrl-D does", function()
    if not t then pending("tmux is not installed") return end
    t.keys("for i = 1, 1e12 do end", "Enter")
    os.execute("sleep 0.3")
    t.keys("C-c")
    t.wait("interrupted\nsl>")
    t.keys("function spin() local n = 0 while true do n = n + 1 end end", "Enter", "spin()", "Enter")
    os.execute("sleep 0.3")
    t.keys("C-c")
    os.execute("sleep 0.05")
    t.keys("C-c")                              -- a second one, at once: still no quitting
    t.wait("stdin:1: interrupted\nsl>")
    t.keys("6 * 7", "Enter")
    t.wait("42\nsl>")
    t.keys("C-d")
    for _ = 1, 100 do
      if not t.screen():find("sl>", 1, true) then break end
      os.execute("sleep 0.05")
    end
    h.not_contains(t.screen(), "sl>", "the screen after Ctrl-D")
  end)

  it("continues a chunk on the next line, and Ctrl-C drops a line", function()
    if not t then pending("tmux is not installed") return end
    t.keys("f = function(x)", "Enter")
    t.wait(">>")
    t.keys("return x + 1 end", "Enter")
    -- each line is typed once the prompt it answers shows: sent at once, a loaded machine
    -- can have Ctrl-C drop the line typed after it too
    local function prompts(n)
      for _ = 1, 200 do
        if select(2, t.screen():gsub("sl>", "")) >= n then return end
        os.execute("sleep 0.05")
      end
      error("the terminal never showed prompt " .. n .. "; it shows:\n" .. t.screen(), 2)
    end
    prompts(2)
    t.keys("half a line", "C-c")
    prompts(3)
    t.keys("f(1)", "Enter")
    local screen = t.wait("2\nsl>")
    h.not_contains(screen, "half a line\n", "screen")
  end)
end)
