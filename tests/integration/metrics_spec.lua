-- `sluice run --metrics HOST:PORT` over real sockets: jobs fed over TCP (or by Kafka's mock
-- brokers), scraped with curl, the Prometheus text parsed and its counts checked exactly;
-- /healthz while the job's loop turns and while it is stuck, /readyz, other paths, counts
-- over several workers, checkpoints, and addresses it cannot listen on.
local h = require "tests.helpers"
local cluster = require "tests.kafka.cluster"
local ffi = require "ffi"

pcall(ffi.cdef, "int close(int fd);")
pcall(ffi.cdef, "long read(int fd, void *buf, unsigned long n);")

-- Everything the peer of fd sends until it closes the connection (at most 10 s).
local function read_all(fd)
  local buf, parts = ffi.new("char[4096]"), {}
  local deadline = os.time() + 10
  while os.time() <= deadline do
    local n = tonumber(ffi.C.read(fd, buf, 4096))
    if n <= 0 then break end
    parts[#parts + 1] = ffi.string(buf, n)
  end
  return table.concat(parts)
end

-- The jobs started and not yet seen to exit: after_each kills them, so that a failed test
-- leaves no job behind.
local running = {}

-- Starts `sluice run script ARGS` in the background; returns a job with pid, signal(name),
-- wait() -> exit code, stderr, and stop() (SIGTERM, and it must exit 0).
local function start(script, args)
  local dir = h.tmpdir()
  local job = { dir = dir, err = h.path(dir, "stderr") }
  os.execute(string.format("(%s run %s %s >%s 2>%s </dev/null & echo $! >%s; wait $!; " ..
    "echo $? >%s) &", h.q(h.bin()), h.q(script), args or "", h.q(h.path(dir, "stdout")),
    h.q(job.err), h.q(h.path(dir, "pid")), h.q(h.path(dir, "rc"))))
  h.wait_until("the job's pid", function()
    job.pid = (h.read(h.path(dir, "pid")) or ""):match("%d+")
    return job.pid ~= nil
  end)
  running[job] = true
  function job.signal(name) os.execute("kill -" .. name .. " " .. job.pid .. " 2>/dev/null") end
  function job.wait()
    local rc
    h.wait_until("the job's exit", function()
      rc = (h.read(h.path(dir, "rc")) or ""):match("%d+")
      return rc ~= nil
    end)
    running[job] = nil
    local stderr = h.read(job.err) or ""
    assert(not stderr:find("ERROR: AddressSanitizer", 1, true), stderr)
    return tonumber(rc), stderr
  end
  function job.stop()
    job.signal("TERM")
    local code, stderr = job.wait()
    assert.are.equal(0, code, stderr)
    return stderr
  end
  return job
end

-- GET (or `method`) http://127.0.0.1:port/path with curl. Returns the status code, the
-- body and the content type.
local function http(port, path, method)
  local dir = h.tmpdir()
  local body = h.path(dir, "body")
  local p = assert(io.popen(string.format("curl -s -m 10 -o %s -w '%%{http_code} " ..
    "%%{content_type}' -X %s %s", h.q(body), method or "GET",
    h.q("http://127.0.0.1:" .. port .. path))))
  local out = p:read("*a")
  p:close()
  local code, ctype = out:match("^(%d+) ?(.*)$")
  return tonumber(code), h.read(body) or "", ctype
end

-- Parses Prometheus text: { samples = { ['name{labels}'] = value }, families = { name =
-- { help =, type = } } }. Fails unless each family's # HELP comes once, then its # TYPE,
-- then its samples only, and each line is well formed.
local function parse(text)
  local samples, families, current = {}, {}, nil
  assert(text:sub(-1) == "\n", "the text ends with a newline")
  for line in text:gmatch("([^\n]*)\n") do
    local name, help = line:match("^# HELP ([%w_:]+) (.*)$")
    if name then
      assert.is_nil(families[name], "# HELP twice for " .. name)
      families[name] = { help = help }
      current = name
    else
      local tname, kind = line:match("^# TYPE ([%w_:]+) (%a+)$")
      if tname then
        assert.are.equal(current, tname, "# TYPE right after its # HELP")
        assert.is_nil(families[tname].type, "# TYPE twice for " .. tname)
        families[tname].type = kind
      else
        local series, sname, value = line:match('^(([%w_:]+).*) (%S+)$')
        assert(series, "a sample line: " .. line)
        assert.are.equal(current, sname, "a sample of the family announced: " .. line)
        assert.is_nil(samples[series], "a series twice: " .. series)
        samples[series] = tonumber(value)
      end
    end
  end
  return { samples = samples, families = families }
end

-- Scrapes /metrics until pred(parsed) holds (the job publishes every 500 ms); returns
-- the last parse.
local function scrape_until(port, what, pred)
  local m
  h.wait_until(what, function()
    local code, body = http(port, "/metrics")
    if code ~= 200 then return false end
    m = parse(body)
    return pred(m)
  end)
  return m
end

local function op(name, id, kind)
  return string.format('{operator="%s",id="%s",kind="%s"}', name, id, kind)
end

-- A job reading JSON lines on tcp port `tp`: a map `parse` (raises on `boom`, stalls the
-- loop for `stall` seconds), a filter `evens`, a file sink.
local function tcp_job(tp, out, extra)
  return h.script(string.format([[
local sl = require "sluice"
local host = require "sluice.host"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :map(function(r)
    if r.boom then error("boom") end
    if r.stall then
      local t = host.clock() + r.stall
      while host.clock() < t do end
    end
    return r
  end):name("parse")
  :filter(function(r) return r.n %% 2 == 0 end):name("evens")
  %s
  :sink(sl.sink.file { path = %q, format = "json" })
]], tp, extra or "", out))
end

local function send(tp, lines)
  local fd = h.dial(tp)
  h.send_all(fd, table.concat(lines, "\n") .. "\n")
  ffi.C.close(fd)
end

describe("--metrics", function()
  after_each(function()
    for job in pairs(running) do job.signal("KILL") end
    running = {}
    h.cleanup()
  end)

  it("counts each operator's records in and out, errors and dead letters exactly", function()
    local tp, mp = h.port(), h.port()
    local out = h.path(h.dir(), "out.json")
    local sock = h.path(h.dir(), "control.sock")
    local job = start(tcp_job(tp, out), "--metrics 127.0.0.1:" .. mp .. " --control " .. h.q(sock))
    local lines = {}
    for i = 1, 10 do lines[i] = string.format('{"n":%d}', i) end
    lines[11] = "not json"
    lines[12] = '{"n":12,"boom":true}'
    send(tp, lines)
    local m = scrape_until(mp, "5 records through the sink", function(p)
      return p.samples["sluice_operator_records_in_total" ..
        op("sink.file " .. out, "#4", "sink")] == 5
    end)
    local s = m.samples
    local src = op("source.tcp 127.0.0.1:" .. tp, "#1", "source")
    assert.are.equal(11, s["sluice_operator_records_out_total" .. src])
    assert.are.equal(1, s["sluice_dead_letters_total" .. src])
    assert.are.equal(11, s["sluice_operator_records_in_total" .. op("parse", "#2", "map")])
    assert.are.equal(10, s["sluice_operator_records_out_total" .. op("parse", "#2", "map")])
    assert.are.equal(1, s["sluice_operator_errors_total" .. op("parse", "#2", "map")])
    assert.are.equal(1, s["sluice_dead_letters_total" .. op("parse", "#2", "map")])
    assert.are.equal(10, s["sluice_operator_records_in_total" .. op("evens", "#3", "filter")])
    assert.are.equal(5, s["sluice_operator_records_out_total" .. op("evens", "#3", "filter")])
    assert.are.equal(0, s["sluice_operator_errors_total" .. op("evens", "#3", "filter")])
    -- a source has no records in, a sink none out
    assert.is_nil(s["sluice_operator_records_in_total" .. src])
    assert.is_nil(s["sluice_operator_records_out_total" .. op("sink.file " .. out, "#4", "sink")])
    local f = m.families
    assert.are.equal("counter", f.sluice_operator_records_in_total.type)
    assert.are.equal("counter", f.sluice_dead_letters_total.type)
    assert.are.equal("gauge", f.process_resident_memory_bytes.type)
    assert.are.equal("counter", f.process_cpu_seconds_total.type)
    assert.is_true(s.process_resident_memory_bytes > 1e6)
    assert.is_true(s.process_cpu_seconds_total > 0)
    local code, _, ctype = http(mp, "/metrics")
    assert.are.equal(200, code)
    assert.are.equal("text/plain; version=0.0.4; charset=utf-8", ctype)
    -- job:metrics() in sluice attach says the same
    local tmp = h.tmpdir()
    local res = h.run("attach " .. h.q(sock), { stdin = h.write(h.path(tmp, "in"),
      'for _, r in ipairs(job:metrics()) do if r.operator == "parse" then ' ..
      'print(r.records_in, r.records_out, r.errors, r.dead_letters) end end\n') })
    h.expect_code(res, 0)
    h.contains(res.stdout, "11\t10\t1\t1\n", "stdout")
    job.stop()
  end)

  it("reports the bytes a sink holds for a peer it cannot reach", function()
    local tp, mp, closed = h.port(), h.port(), h.port()
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :sink(sl.sink.tcp { connect = "127.0.0.1:%d", format = "json" })
]], tp, closed)), "--metrics 127.0.0.1:" .. mp .. " --drain-timeout 100ms")
    send(tp, { '{"n":1}', '{"n":2}', '{"n":30}' })
    local sink = op("sink.tcp 127.0.0.1:" .. closed, "#2", "sink")
    local m = scrape_until(mp, "3 records at the sink", function(p)
      return p.samples["sluice_operator_records_in_total" .. sink] == 3
    end)
    -- {"n":1}\n {"n":2}\n {"n":30}\n
    assert.are.equal(8 + 8 + 9, m.samples["sluice_sink_queue_bytes" .. sink])
    assert.are.equal("gauge", m.families.sluice_sink_queue_bytes.type)
    job.signal("TERM")
    local code, stderr = job.wait()
    assert.are.equal(1, code, stderr)     -- what it could not deliver is said, status 1
  end)

  it("reports the bytes of the bodies an HTTP sink holds for a server it cannot reach", function()
    local tp, mp, closed = h.port(), h.port(), h.port()
    local url = "http://127.0.0.1:" .. closed .. "/in"
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :sink(sl.sink.http { url = %q, batch = 3 })
]], tp, url)), "--metrics 127.0.0.1:" .. mp .. " --drain-timeout 100ms")
    send(tp, { '{"n":1}', '{"n":2}', '{"n":30}' })
    local sink = op("sink.http " .. url, "#2", "sink")
    -- one body of the three records as JSON lines, retried while the server is away
    local m = scrape_until(mp, "the batch held", function(p)
      return p.samples["sluice_sink_queue_bytes" .. sink] == 8 + 8 + 9
    end)
    assert.are.equal(3, m.samples["sluice_operator_records_in_total" .. sink])
    job.signal("TERM")
    local code, stderr = job.wait()
    assert.are.equal(1, code, stderr)
  end)

  it("escapes label values: backslash, double quote, newline", function()
    local tp, mp = h.port(), h.port()
    local out = h.path(h.dir(), "out.json")
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :map(function(r) return r end):name('say "hi"\\n\nnow')
  :sink(sl.sink.file { path = %q, format = "json" })
]], tp, out)), "--metrics 127.0.0.1:" .. mp)
    send(tp, { '{"n":1}', '{"n":2}' })
    local m = scrape_until(mp, "2 records through the map", function(p)
      return p.samples['sluice_operator_records_out_total{operator="say \\"hi\\"\\\\n\\nnow",' ..
        'id="#2",kind="map"}'] == 2
    end)
    assert.is_not_nil(m)
    job.stop()
  end)

  it("/healthz: 200 while the loop turns, 503 with the stall's length while it is stuck",
    function()
    local tp, mp = h.port(), h.port()
    local job = start(tcp_job(tp, h.path(h.dir(), "out.json")), "--metrics 127.0.0.1:" .. mp)
    scrape_until(mp, "the first metrics", function() return true end)
    local code, body = http(mp, "/healthz")
    assert.are.equal(200, code)
    assert.are.equal("ok\n", body)
    send(tp, { '{"n":2}', '{"n":4,"stall":3}' })
    local stalled
    h.wait_until("/healthz to say 503", function()
      code, body = http(mp, "/healthz")
      stalled = code == 503 and body
      return stalled
    end)
    local ms = tonumber(stalled:match("^stalled: the job's loop has not turned for (%d+) ms\n$"))
    assert(ms and ms > 1000 and ms < 3500, stalled)
    -- /metrics still answers, from what was published before the stall
    code = http(mp, "/metrics")
    assert.are.equal(200, code)
    h.wait_until("/healthz to say 200 again", function() return http(mp, "/healthz") == 200 end)
    scrape_until(mp, "the stalled record through", function(p)
      return p.samples["sluice_operator_records_out_total" .. op("evens", "#3", "filter")] == 2
    end)
    job.stop()
  end)

  it("/readyz: 200 once the sources are open; other paths 404, other methods 405", function()
    local tp, mp = h.port(), h.port()
    local job = start(tcp_job(tp, h.path(h.dir(), "out.json")), "--metrics 127.0.0.1:" .. mp)
    h.wait_until("/readyz to say 200", function() return http(mp, "/readyz") == 200 end)
    local _, body = http(mp, "/readyz")
    assert.are.equal("ready\n", body)
    local code
    code, body = http(mp, "/nothing")
    assert.are.equal(404, code)
    assert.are.equal("not found: /nothing (this is sluice's --metrics: /metrics, /healthz, " ..
      "/readyz)\n", body)
    code = http(mp, "/metrics?x=1")
    assert.are.equal(200, code)
    code = http(mp, "/metrics", "POST")
    assert.are.equal(405, code)
    job.stop()
  end)

  it("answers pipelined requests on one connection in order, and a bad one with 400",
    function()
    local tp, mp = h.port(), h.port()
    local job = start(tcp_job(tp, h.path(h.dir(), "out.json")), "--metrics 127.0.0.1:" .. mp)
    h.wait_until("/readyz to say 200", function() return http(mp, "/readyz") == 200 end)
    local fd = h.dial(mp)
    h.send_all(fd, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" ..
      "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n" ..
      "GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    local got = read_all(fd)
    ffi.C.close(fd)
    local heads = {}
    for status in got:gmatch("HTTP/1%.1 (%d+ [^\r]+)\r\n") do heads[#heads + 1] = status end
    assert.are.same({ "200 OK", "200 OK", "200 OK" }, heads)
    -- (HEAD: the length of /metrics, and no body: "ok\n" then "ready\n" follow directly)
    assert.is_truthy(got:find("\r\n\r\nok\nHTTP/1%.1 200 OK\r\nContent%-Type: text/plain; " ..
      "version=0%.0%.4; charset=utf%-8\r\nContent%-Length: %d+\r\n\r\nHTTP/1%.1 200 OK"), got)
    assert.is_truthy(got:find("Connection: close\r\n\r\nready\n$"), got)
    fd = h.dial(mp)
    h.send_all(fd, "NOT HTTP AT ALL\r\n\r\n")
    got = read_all(fd)
    ffi.C.close(fd)
    assert.are.equal("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      got)
    assert.are.equal(200, (http(mp, "/healthz")))
    job.stop()
  end)

  it("/readyz: 503 and why while a Kafka source's brokers cannot be reached", function()
    local mp, dead = h.port(), h.port()
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.kafka { brokers = "127.0.0.1:%d", topic = "in", group = "g" }
  :sink(sl.sink.stdout {})
]], dead)), "--metrics 127.0.0.1:" .. mp)
    h.wait_until("/readyz to answer", function() return http(mp, "/readyz") == 503 end)
    local code, body
    h.wait_until("/readyz to give the brokers' error", function()
      code, body = http(mp, "/readyz")
      return body:find("127.0.0.1:" .. dead, 1, true) ~= nil
    end)
    assert.are.equal(503, code)
    assert.is_truthy(body:find("^not ready: source.kafka in"), body)
    -- the job itself is fine: its loop turns
    assert.are.equal(200, (http(mp, "/healthz")))
    job.stop()
  end)

  it("reports each Kafka partition's consumer lag, and /readyz follows the brokers", function()
    local k = cluster.start { "in:2" }
    finally(function() k:stop() end)
    local input = {}
    for i = 1, 10 do input[i] = string.format('{"n":%d}', i) end
    k:produce("in", { unpack(input, 1, 4) }, { partition = 0 })
    k:produce("in", { unpack(input, 5, 10) }, { partition = 1 })
    local mp = h.port()
    local out = h.path(h.dir(), "out.json")
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.kafka { brokers = %q, topic = "in", group = "g", start = "earliest" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], k.bootstrap, out)), "--metrics 127.0.0.1:" .. mp)
    local src = '{operator="source.kafka in",id="#1",topic="in",partition="%d"}'
    local m = scrape_until(mp, "10 records read and no lag", function(p)
      local s = p.samples
      return s["sluice_operator_records_out_total" .. op("source.kafka in", "#1", "source")] == 10
        and s["sluice_kafka_consumer_lag" .. src:format(0)] == 0
        and s["sluice_kafka_consumer_lag" .. src:format(1)] == 0
    end)
    assert.are.equal("gauge", m.families.sluice_kafka_consumer_lag.type)
    assert.are.equal(200, (http(mp, "/readyz")))
    -- the brokers go away: not ready, and why; back, with messages flowing: ready again
    k:down()
    h.wait_until("/readyz to say 503", function() return http(mp, "/readyz") == 503 end)
    local _, body = http(mp, "/readyz")
    assert.is_truthy(body:find("^not ready: source.kafka in"), body)
    k:up()
    k:produce("in", { '{"n":11}' }, { partition = 0 })
    h.wait_until("/readyz to say 200 again", function() return http(mp, "/readyz") == 200 end)
    scrape_until(mp, "11 records read", function(p)
      return p.samples["sluice_operator_records_out_total" ..
        op("source.kafka in", "#1", "source")] == 11
    end)
    job.stop()
  end)

  it("reports the bytes a Kafka sink holds while its brokers are down, and 0 once delivered",
    function()
    local k = cluster.start { "out:1" }
    finally(function() k:stop() end)
    local tp, mp = h.port(), h.port()
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :sink(sl.sink.kafka { brokers = %q, topic = "out" })
]], tp, k.bootstrap)), "--metrics 127.0.0.1:" .. mp)
    local sink = op("sink.kafka out", "#2", "sink")
    scrape_until(mp, "the sink's queue", function(p)
      return p.samples["sluice_sink_queue_bytes" .. sink] == 0
    end)
    k:down()
    h.wait_until("the sink to say its brokers are down", function()
      return (h.read(job.err) or ""):find("sink.kafka out", 1, true) ~= nil
    end)
    send(tp, { '{"n":1}', '{"n":2}', '{"n":30}' })
    local m = scrape_until(mp, "3 records at the sink", function(p)
      return p.samples["sluice_operator_records_in_total" .. sink] == 3
    end)
    -- the three values as JSON, no key: {"n":1} {"n":2} {"n":30}
    assert.are.equal(7 + 7 + 8, m.samples["sluice_sink_queue_bytes" .. sink])
    k:up()
    scrape_until(mp, "the queue delivered", function(p)
      return p.samples["sluice_sink_queue_bytes" .. sink] == 0
    end)
    job.stop()
    assert.are.equal(3, #k:consume("out"))
  end)

  it("--workers 2: the counts cover both workers", function()
    local tp, mp = h.port(), h.port()
    local out = h.path(h.dir(), "out.json")
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :key_by("k")
  :map(function(r) return r end):name("keyed")
  :sink(sl.sink.file { path = %q, format = "json" })
]], tp, out)), "--workers 2 --metrics 127.0.0.1:" .. mp)
    local lines = {}
    for i = 1, 100 do lines[i] = string.format('{"k":"k%d","n":%d}', i, i) end
    send(tp, lines)
    -- (key_by and the map are one stage, #2,#3, run by the worker that owns each key: 100
    -- keys fall to both workers, so 100 is the sum of both workers' counts)
    local keyed = op("keyed", "#2,#3", "map")
    local m = scrape_until(mp, "100 records through the keyed map", function(p)
      return p.samples["sluice_operator_records_out_total" .. keyed] == 100
    end)
    assert.are.equal(100, m.samples["sluice_operator_records_in_total" .. keyed])
    assert.are.equal(100, m.samples["sluice_operator_records_in_total" ..
      op("sink.file " .. out, "#4", "sink")])
    job.stop()
    assert.are.equal(100, #h.lines(h.read(out)))
  end)

  it("reports checkpoints: how many, how long the last took, how old it is", function()
    local tp, mp = h.port(), h.port()
    local job = start(tcp_job(tp, h.path(h.dir(), "out.json")), "--metrics 127.0.0.1:" .. mp ..
      " --state-dir " .. h.q(h.path(h.dir(), "st")) .. " --checkpoint-every 200ms")
    local m = scrape_until(mp, "two checkpoints", function(p)
      return (p.samples.sluice_checkpoints_total or 0) >= 2
    end)
    local s = m.samples
    assert.are.equal(0, s.sluice_checkpoint_failures_total)
    assert.is_true(s.sluice_checkpoint_duration_seconds > 0 and s.sluice_checkpoint_duration_seconds < 5)
    assert.is_true(s.sluice_checkpoint_duration_max_seconds >= s.sluice_checkpoint_duration_seconds)
    assert.is_true(s.sluice_checkpoint_age_seconds >= 0 and s.sluice_checkpoint_age_seconds < 5)
    assert.are.equal("gauge", m.families.sluice_checkpoint_age_seconds.type)
    job.stop()
  end)

  it("says which address it cannot listen on, and exits 2", function()
    local script = tcp_job(h.port(), h.path(h.dir(), "out.json"))
    local res = h.run("run " .. h.q(script) .. " --metrics nowhere")
    h.expect_code(res, 2)
    h.contains(res.stderr, 'sluice: --metrics nowhere: bad address "nowhere" (expected ' ..
      'host:port, [ipv6]:port or localhost:port)')
    local mp = h.port()
    local job = start(tcp_job(h.port(), h.path(h.dir(), "out2.json")), "--metrics 127.0.0.1:" .. mp)
    scrape_until(mp, "the first job's metrics", function() return true end)
    res = h.run("run " .. h.q(script) .. " --metrics 127.0.0.1:" .. mp)
    h.expect_code(res, 2)
    h.contains(res.stderr, string.format("sluice: --metrics 127.0.0.1:%d: listen on " ..
      "127.0.0.1:%d: address already in use", mp, mp))
    job.stop()
    res = h.run("run " .. h.q(script) .. " --metrics")
    h.expect_code(res, 2)
    h.contains(res.stderr, "--metrics needs a value")
  end)
end)
