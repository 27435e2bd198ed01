-- sl.source.file{follow=true}: tails a growing file like tail -F, through appends, a
-- rename-and-recreate rotation and a truncation, and stops cleanly on SIGTERM.

local h = require "tests.helpers"

-- Waits (at most 30 s) until path holds exactly the lines want; returns what it holds.
local function wait_for(path, want)
  local got
  for _ = 1, 3000 do
    got = h.lines(h.read(path) or "")
    if #got >= #want then break end
    h.sleep_ms(10)
  end
  return got
end

local append = h.append

describe("source.file{follow=true}", function()
  after_each(h.cleanup)

  it("follows appends, rename-and-recreate and truncation, and ends on SIGTERM", function()
    local dir = h.dir()
    local log, out = h.path(dir, "app.log"), h.path(dir, "out.txt")
    h.write(log, "a1\na2\n")
    local seen = h.path(dir, "seen.txt")
    local pidfile, rcfile = h.path(dir, "pid"), h.path(dir, "rc")
    finally(function()
      if not (h.read(rcfile) or ""):match("%d") then
        os.execute("kill -KILL $(cat " .. h.q(pidfile) .. ") 2>/dev/null")
      end
    end)
    -- the file sink buffers until the end: a peek writes each record through at once
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.file { path = %q, format = "lines", follow = true }
  :peek(function(r) local f = io.open(%q, "a") f:write(r, "\n") f:close() end)
  :sink(sl.sink.file { path = %q, format = "lines" })
]], log, seen, out))
    os.execute(string.format("(%s run %s >/dev/null 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s) &",
      h.q(h.bin()), h.q(script), h.q(h.path(dir, "err")), h.q(pidfile), h.q(rcfile)))
    assert.are.same({ "a1", "a2" }, wait_for(seen, { "a1", "a2" }))
    append(log, "a3\na4")                       -- the last line has no newline yet
    assert.are.same({ "a1", "a2", "a3" }, wait_for(seen, { 1, 2, 3 }))
    os.rename(log, log .. ".1")                 -- rotation: rename, then a new file
    h.write(log, "b1\nb2 a longer line\n")
    assert.are.same({ "a1", "a2", "a3", "a4", "b1", "b2 a longer line" }, wait_for(seen, { 1, 2, 3, 4, 5, 6 }))
    -- truncation (copytruncate): noticed when the file is shorter than what was read, so
    -- what follows is shorter than before, as tail -F needs too
    h.write(log, "")
    append(log, "c1\n")
    assert.are.same({ "a1", "a2", "a3", "a4", "b1", "b2 a longer line", "c1" }, wait_for(seen, { 1, 2, 3, 4, 5, 6, 7 }))
    os.execute("kill -TERM $(cat " .. h.q(pidfile) .. ")")
    local rc
    for _ = 1, 3000 do
      rc = h.read(rcfile)
      if rc and rc:match("%d") then break end
      h.sleep_ms(10)
    end
    assert.are.equal(0, tonumber(rc), h.read(h.path(dir, "err")))
    assert.are.same({ "a1", "a2", "a3", "a4", "b1", "b2 a longer line", "c1" }, h.lines(h.read(out)))
  end)
end)
