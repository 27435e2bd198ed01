-- A closed stdout (`sluice run job.lua | head -3`) ends the job quietly with status 0, as it
-- does for jq and grep: no "broken pipe" message, and an endless job stops too.
local h = require "tests.helpers"

-- Runs `sluice ARGS | head -N` (stdin: the file `input`, else /dev/null) and returns what
-- head printed, sluice's stderr and status.
local function run_into_head(args, n, input)
  local dir = h.tmpdir()
  local out, err, rc = h.path(dir, "out"), h.path(dir, "err"), h.path(dir, "rc")
  local cmd = string.format("(timeout -k 5 30 %s %s 2>%s <%s; echo $? >%s) | head -%d >%s",
    h.q(h.bin()), args, h.q(err), h.q(input or "/dev/null"), h.q(rc), n, h.q(out))
  os.execute(cmd)
  return h.read(out) or "", h.read(err) or "", tonumber(h.read(rc) or "")
end

describe("stdout closed by its reader", function()
  after_each(h.cleanup)

  it("ends a bounded job with status 0 and no message", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.generator { count = 2000000, fn = function(i) return i end }
  :sink(sl.sink.stdout {})
]])
    local out, err, rc = run_into_head("run " .. h.q(script), 3)
    assert.equal("1\n2\n3\n", out)
    assert.equal("", err)
    assert.equal(0, rc)
  end)

  it("ends an endless job, and the other sinks still get what was read", function()
    local dir = h.dir()
    local side = h.path(dir, "side.jsonl")
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { fn = function(i) return { i = i } end }
  :sink(sl.sink.stdout { format = "json" })
  :sink(sl.sink.file { path = %q, format = "json" })
]], side))
    local out, err, rc = run_into_head("run " .. h.q(script), 2)
    assert.equal('{"i":1}\n{"i":2}\n', out)
    assert.equal("", err)
    assert.equal(0, rc)
    assert.truthy(#h.lines(h.read(side) or "") >= 2)
  end)

  it("ends sluice -e the same way", function()
    local lines = {}
    for i = 1, 100000 do lines[i] = '{"a":' .. i .. '}' end
    local input = h.write(h.path(h.dir(), "in.jsonl"), table.concat(lines, "\n") .. "\n")
    local out, err, rc = run_into_head("-e 'map(function(r) return r.a end)'", 2, input)
    assert.equal("1\n2\n", out)
    assert.equal("", err)
    assert.equal(0, rc)
  end)

  it("ends a job whose stdout sink prints a table", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.generator { count = 200000, fn = function(i) return { n = i } end }
  :sink(sl.sink.stdout { format = "table" })
]])
    local out, err, rc = run_into_head("run " .. h.q(script), 1)
    assert.equal("n\n", out)
    assert.equal("", err)
    assert.equal(0, rc)
  end)
end)
