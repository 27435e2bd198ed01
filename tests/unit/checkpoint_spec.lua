-- checkpoint.lua's file format (torn, corrupt and incompatible files told apart), and the
-- host pieces it stands on: reader positions and seeks, writer sizes and cut-backs.
local checkpoint = require "sluice.checkpoint"
local host = require "sluice.host"
local h = require "tests.helpers"

local core = host.core

describe("checkpoint files", function()
  local snap = { version = 1, operators = { counts = { wm = -math.huge, accs = { { "k", { 3, 4.5 } } } } },
    sources = { ["source.file in.txt"] = { offset = 12, line = 3, ino = 77, dev = 2 } },
    sinks = { ["out.jsonl"] = 1234 } }

  it("round-trips a snapshot, infinities included", function()
    local back = assert(checkpoint.decode(checkpoint.encode(snap)))
    assert.are.same(snap, back)
    assert.are.equal(-math.huge, back.operators.counts.wm)
  end)

  it("reports every torn prefix as unreadable, never as a snapshot or an error", function()
    local bytes = checkpoint.encode(snap)
    for n = 0, #bytes - 1 do
      local got, why, other = checkpoint.decode(bytes:sub(1, n))
      assert.is_nil(got)
      assert.is_nil(other, "a torn file is not an incompatible one")
      assert.truthy(why:match("^torn") or why:match("^not a sluice checkpoint")
        or why:match("^corrupt"), why)
    end
  end)

  it("reports a flipped byte anywhere as corrupt", function()
    local bytes = checkpoint.encode(snap)
    for i = 9, #bytes, 7 do
      local bad = bytes:sub(1, i - 1) .. string.char((bytes:byte(i) + 1) % 256) .. bytes:sub(i + 1)
      local got, why, other = checkpoint.decode(bad)
      assert.is_nil(got)
      assert.is_nil(other, "byte " .. i)
      assert.truthy(why:match("^corrupt") or why:match("^torn"), why)
    end
  end)

  it("tells a checkpoint of another format version apart, with the writer's version", function()
    local fmt = checkpoint.FORMAT
    checkpoint.FORMAT = 2
    local ok, bytes = pcall(checkpoint.encode, snap)
    checkpoint.FORMAT = fmt
    assert(ok, bytes)
    local got, why, other = checkpoint.decode(bytes)
    assert.is_nil(got)
    assert.are.equal("incompatible", why)
    assert.are.same({ format = 2, version = host.version }, other)
  end)
end)

-- Runs the loop until stop() is called; a 5 s timer fails the run if it is not.
local function run_until(setup)
  local timed_out = false
  local guard = core.timer(function() timed_out = true; core.stop() end)
  guard:start(5000)
  setup()
  assert(core.run())
  guard:close()
  assert(not timed_out, "timed out")
end

-- Follows the file at path with a lines reader, in a loop that runs until core.stop():
-- after each batch, after_batch(lines read so far, reader). Returns every line read; the
-- reader is closed by then.
local function follow_lines(path, after_batch)
  local got, r = {}, nil
  run_until(function()
    r = core.reader { path = path, format = "lines", follow = true,
      on_batch = function(b, n)
        for i = 1, n do got[#got + 1] = b[i] end
        after_batch(#got, r)
      end }
    r:start()
  end)
  r:close()
  return got
end

describe("core.reader positions", function()
  after_each(h.cleanup)

  it("stops short of an unterminated line, and a reader opened there reads on", function()
    local path = h.path(h.tmpdir(), "in.txt")
    h.write(path, "a\nbb\nccc")
    local pos
    local got = follow_lines(path, function(count, r)
      if count == 2 then pos = { r:position() }; core.stop() end
    end)
    local st = core.durable.stat(path)
    assert.are.same({ "a", "bb" }, got)
    assert.are.same({ 5, 3, st.ino, st.dev }, pos)
    local again, bad, r = {}, {}, nil
    run_until(function()
      r = core.reader { path = path, format = "json", offset = pos[1], line = pos[2],
        on_batch = function(b, n) for i = 1, n do again[#again + 1] = b[i] end end,
        on_bad = function(info) bad[#bad + 1] = info end,
        on_end = function() core.stop() end }
      r:start()
    end)
    r:close()
    assert.are.same({}, again)
    -- "ccc" is not JSON: reported at its own line and offset, not at 1 and 0
    assert.are.equal(3, bad[1].line)
    assert.are.equal(5, bad[1].offset)
  end)

  it("names the new file after a rotation, from its own start", function()
    local path = h.path(h.tmpdir(), "app.log")
    h.write(path, "a1\na2\n")
    local pos
    local got = follow_lines(path, function(count, r)
      if count == 2 then
        os.rename(path, path .. ".1")
        h.write(path, "b1\nb2\n")
      elseif count == 4 then
        pos = { r:position() }
        core.stop()
      end
    end)
    local st = core.durable.stat(path)
    assert.are.same({ "a1", "a2", "b1", "b2" }, got)
    -- lines count on across the rotation, as in the reader's dead letters
    assert.are.same({ 6, 5, st.ino, st.dev }, pos)
  end)

  it("gives csv header names with the position, and takes them back", function()
    local path = h.path(h.tmpdir(), "in.csv")
    h.write(path, "x,y\n1,2\n")
    local r, pos
    run_until(function()
      r = core.reader { path = path, format = "csv", header = true,
        on_batch = function() pos = { r:position() } end, on_end = function() core.stop() end }
      r:start()
    end)
    r:close()
    assert.are.same({ "x", "y" }, pos[5])
    local f = io.open(path, "ab")
    f:write("3,4\n")
    f:close()
    local got = {}
    run_until(function()
      r = core.reader { path = path, format = "csv", header = true, offset = pos[1],
        line = pos[2], columns = pos[5],
        on_batch = function(b, n) for i = 1, n do got[#got + 1] = b[i] end end,
        on_end = function() core.stop() end }
      r:start()
    end)
    r:close()
    assert.are.same({ { x = 3, y = 4 } }, got)
  end)
end)

describe("core.writer for checkpoints", function()
  after_each(h.cleanup)

  it("size() counts what is buffered; truncate_to cuts back and appends", function()
    local path = h.path(h.tmpdir(), "out.txt")
    local w = core.writer { path = path, format = "lines" }
    w:write({ "one", "two" }, 2)
    assert.are.equal(8, w:size())
    w:write({ "lost" }, 1)
    w:close()
    w = core.writer { path = path, format = "lines", truncate_to = 8 }
    w:write({ "three" }, 1)
    w:close()
    assert.are.equal("one\ntwo\nthree\n", h.read(path))
  end)
end)
