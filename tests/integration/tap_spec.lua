-- sluice tap against a real running job: records streamed until Ctrl-C (SIGINT), as text
-- or JSON lines, from operators named by name, #id or glob; sources and sinks included.

local h = require "tests.helpers"
local host = require "sluice.host"

local JOB = [[
local sl = require "sluice"
sl.source.generator { rate = 1000, fn = function(i) return { i = i } end }
  :filter(function(r) return r.i % 2 == 0 end)
  :map(function(r) return { n = r.i } end):name("shape")
  :sink(sl.sink.null())
]]

local pid, sock, dir

local function alive(p)
  local stat = h.read("/proc/" .. p .. "/stat")
  return stat ~= nil and stat:match("%) (%a)") ~= "Z"
end

-- `sluice tap ARGS`, interrupted as Ctrl-C would after `seconds`. Returns the run.
local function tap(args, seconds)
  local out, err = h.path(dir, "tap.out"), h.path(dir, "tap.err")
  local cmd = string.format("timeout -k 5 --preserve-status -s INT %s %s tap %s %s >%s 2>%s",
    seconds or 1, h.q(h.bin()), h.q(sock), args, h.q(out), h.q(err))
  local status = os.execute(cmd)
  local code = type(status) == "number" and math.floor(status / 256) or status
  return { code = code, stdout = h.read(out) or "", stderr = h.read(err) or "", cmd = cmd }
end

describe("sluice tap", function()
  before_each(function()
    dir = h.tmpdir()
    sock = h.path(dir, "job.sock")
    local script = h.script(JOB)
    local p = assert(io.popen(string.format("%s run %s --control %s >/dev/null 2>%s & echo $!",
      h.q(h.bin()), h.q(script), h.q(sock), h.q(h.path(dir, "job.err")))))
    pid = p:read("*l")
    p:close()
    h.wait_until("the job's socket", function()
      local c = host.core.ctl_connect(sock)
      if c then c:close() end
      return c ~= nil
    end)
  end)

  after_each(function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    h.wait_until("the job's end", function() return not alive(pid) end)
    h.cleanup()
  end)

  it("streams a source's records as JSON lines until Ctrl-C, then exits 0", function()
    local res = tap("'#1' --format json")
    h.expect_code(res, 0)
    local lines = h.lines(res.stdout)
    assert.truthy(#lines >= 100, res.stdout)
    local last
    for _, l in ipairs(lines) do
      local i = tonumber(l:match('^{"i":(%d+)}$'))
      assert.truthy(i, l)
      if last then assert.equal(last + 1, i) end
      last = i
    end
    assert.is_true(alive(pid))
  end)

  it("taps an operator inside a fused stage, and several by a glob, each after its name", function()
    local res = tap("filter", 0.5)
    h.expect_code(res, 0)
    for _, l in ipairs(h.lines(res.stdout)) do assert.truthy(l:match("^{ i = %d*[02468] }$"), l) end
    res = tap("'s*' --format=json", 0.5)
    h.expect_code(res, 0)
    h.contains(res.stdout, '"operator":"shape"', "stdout")
    h.contains(res.stdout, '"operator":"sink.null"', "stdout")
  end)

  it("says which pattern matches nothing, with status 1", function()
    local res = tap("nope")
    h.expect_code(res, 1)
    h.contains(res.stderr, 'no operator is named "nope"', "stderr")
  end)

  it("refuses a bad --format and a missing pattern with status 2", function()
    h.expect_code(h.run("tap x --format yaml"), 2)
    h.expect_code(h.run("tap"), 2)
  end)
end)
