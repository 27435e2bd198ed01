-- Running jobs and their control sockets: `sluice ps` lists the running jobs (pid, script,
-- socket, uptime), `attach` and `top` take a pid or a script name as well as a path, a
-- job's socket goes when it ends, and sockets of jobs that died are swept away.
local h = require "tests.helpers"

local function exists(path)
  local ok = os.execute("test -e " .. h.q(path))
  return ok == 0 or ok == true
end

describe("running jobs", function()
  local runtime_dir, pids

  before_each(function()
    runtime_dir, pids = h.tmpdir(), {}
  end)

  after_each(function()
    for _, pid in ipairs(pids) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    h.cleanup()
  end)

  local env = function() return { XDG_RUNTIME_DIR = runtime_dir } end

  -- Starts an endless job of the script `name`.lua with the default socket; returns its pid
  -- and socket path once it listens.
  local function start(name)
    local script = h.script([[
local sl = require "sluice"
sl.source.generator { rate = 100, fn = function(i) return i end }
  :map(function(x) return x + 1 end):name("numbers")
  :sink(sl.sink.null())
]], name .. ".lua")
    local pidfile = h.path(h.tmpdir(), "pid")
    os.execute(string.format("(XDG_RUNTIME_DIR=%s %s run %s >/dev/null 2>&1 </dev/null & " ..
      "echo $! >%s)", h.q(runtime_dir), h.q(h.bin()), h.q(script), h.q(pidfile)))
    h.wait_until("the job to start", function() return (h.read(pidfile) or ""):match("%d") end)
    local pid = h.read(pidfile):match("%d+")
    pids[#pids + 1] = pid
    local sock = string.format("%s/sluice/%s-%s.sock", runtime_dir, name, pid)
    h.wait_until("the socket", function() return exists(sock) end)
    return pid, sock, script
  end

  it("sluice ps lists each running job: pid, script, uptime, socket", function()
    local pid1, sock1, script1 = start("alpha")
    local pid2, sock2 = start("beta")
    local res = h.run("ps", { env = env() })
    h.expect_code(res, 0)
    local lines = h.lines(res.stdout)
    assert.equal(3, #lines, res.stdout)
    assert.truthy(lines[1]:match("^PID%s+SCRIPT%s+UPTIME%s+SOCKET$"), lines[1])
    local found = {}
    for i = 2, 3 do
      local pid, script, up, sock = lines[i]:match("^(%d+)%s+(%S+)%s+(%d+[hms]%S*)%s+(%S+)$")
      assert.truthy(pid, lines[i])
      found[pid] = { script = script, sock = sock, up = up }
    end
    assert.same({ script1, sock1 }, { found[pid1].script, found[pid1].sock })
    assert.equal(sock2, found[pid2].sock)
  end)

  it("sluice ps with no job says so and exits 0", function()
    local res = h.run("ps", { env = env() })
    h.expect_code(res, 0)
    assert.equal("", res.stdout)
    h.contains(res.stderr, "no running job")
  end)

  it("attach and top take a pid or a script name", function()
    local pid1 = start("alpha")
    start("beta")
    local input = h.write(h.path(h.dir(), "input"), "=job.script\n")
    for _, target in ipairs { pid1, "alpha", "alpha.lua" } do
      local res = h.run("attach " .. target, { env = env(), stdin = input })
      h.expect_code(res, 0)
      h.contains(res.stdout, "alpha.lua", "attach " .. target)
    end
    local res = h.run("top beta", { env = env() })
    h.expect_code(res, 0)
    h.contains(res.stdout, "numbers", "top beta")
    -- without a name there are two to choose from; an unknown one is named
    res = h.run("attach", { env = env(), stdin = input })
    h.expect_code(res, 1)
    h.contains(res.stderr, "several jobs are running")
    res = h.run("attach gamma", { env = env(), stdin = input })
    h.expect_code(res, 1)
    h.contains(res.stderr, "no running job of a script named gamma")
    res = h.run("attach 999999", { env = env(), stdin = input })
    h.expect_code(res, 1)
    h.contains(res.stderr, "no running job with pid 999999")
  end)

  it("a job's socket goes when it ends, and ps sweeps the sockets of jobs that died", function()
    local pid1, sock1 = start("alpha")
    local pid2, sock2 = start("beta")
    os.execute("kill -TERM " .. pid1)
    h.wait_until("alpha's socket to go", function() return not exists(sock1) end)
    os.execute("kill -KILL " .. pid2)          -- no chance to clean up
    h.sleep_ms(300)
    assert.is_true(exists(sock2))
    local res = h.run("ps", { env = env() })
    h.expect_code(res, 0)
    assert.equal("", res.stdout)
    assert.is_false(exists(sock2))
  end)
end)
