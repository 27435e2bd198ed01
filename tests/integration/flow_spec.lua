-- Flow control: a fast source into a TCP sink whose peer reads slowly. The sender's queue
-- is bounded (sources pause above the sink's high mark), so its peak memory stays small
-- while every record still arrives, in order.

local h = require "tests.helpers"
local sl = require "sluice"
local ffi = require "ffi"

pcall(ffi.cdef, "int usleep(unsigned usec);")

local function start(script, prefix)
  local dir = h.tmpdir()
  local job = { dir = dir }
  os.execute(string.format("(%s %s run %s >%s 2>%s </dev/null; echo $? >%s) &", prefix or "",
    h.q(h.bin()), h.q(script), h.q(h.path(dir, "out")), h.q(h.path(dir, "err")),
    h.q(h.path(dir, "rc"))))
  function job.wait()
    for _ = 1, 12000 do
      local rc = h.read(h.path(dir, "rc"))
      if rc and rc:match("%d+") then return tonumber(rc:match("%d+")), h.read(h.path(dir, "err")) end
      ffi.C.usleep(10000)
    end
    error("job did not finish")
  end
  return job
end

describe("flow control", function()
  after_each(h.cleanup)

  it("a fast generator into a slow TCP peer: bounded memory, every record in order", function()
    local dir = h.dir()
    local p = 40000 + (tonumber(io.open("/proc/self/stat"):read("*n")) % 20000)
    local out, rss = h.path(dir, "out.jsonl"), h.path(dir, "rss")
    local N = 120000
    -- ~60 MB of records; the receiver sleeps 2 ms per batch of 256
    local receiver = start(h.script(string.format([[
local sl = require "sluice"
local ffi = require "ffi"
pcall(ffi.cdef, "int usleep(unsigned usec);")
local seen = 0
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :map(function(r) return { i = r.i } end)
  :peek(function() seen = seen + 1; if seen %% 256 == 0 then ffi.C.usleep(6000) end end)
  :take(%d)
  :sink(sl.sink.file { path = %q, format = "json" })
]], p, N, out)))
    local sender = start(h.script(string.format([[
local sl = require "sluice"
local pad = string.rep("x", 480)
sl.source.generator { count = %d, fn = function(i) return { i = i, pad = pad } end }
  :sink(sl.sink.tcp { connect = "127.0.0.1:%d", format = "json", high = 1048576 })
]], N, p)), "/usr/bin/time -f %M -o " .. h.q(rss))
    local code, err = sender.wait()
    assert.are.equal(0, code, err)
    code, err = receiver.wait()
    assert.are.equal(0, code, err)
    local kb = tonumber((h.read(rss) or ""):match("(%d+)%s*$"))
    assert.is_truthy(kb, h.read(rss))
    -- ~60 MB cross the connection; unbounded, the sender's queue would hold most of it
    -- (about 50 MB of RSS measured), bounded it stays near its 1 MiB high mark. The
    -- sanitizers' shadow memory makes the figure meaningless under sluice-asan.
    if not h.bin():find("asan", 1, true) then
      assert.is_true(kb < 24 * 1024, "sender peak RSS " .. tostring(kb) .. " kB")
    end
    if os.getenv("SLUICE_SPEC_VERBOSE") then print("sender peak RSS kB", kb) end
    local lines = h.lines(h.read(out))
    assert.are.equal(N, #lines)
    for i = 1, N, 997 do assert.are.equal(i, sl.json.decode(lines[i]).i) end
    assert.are.equal(N, sl.json.decode(lines[N]).i)
  end)
end)
