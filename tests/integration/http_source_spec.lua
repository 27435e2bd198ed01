-- sl.source.http on real sockets: requests written byte for byte on raw connections (so
-- keep-alive, pipelining, chunked bodies and malformed HTTP are exactly what is sent) and
-- curl for an ordinary client. Each job writes what it got to a file, checked exactly, and
-- its dead letters go to stderr.

local h = require "tests.helpers"
local sl = require "sluice"
local ffi = require "ffi"

pcall(ffi.cdef, [[
struct sl_http_pollfd { int fd; short events; short revents; };
int poll(struct sl_http_pollfd *fds, unsigned long n, int timeout);
long read(int fd, void *buf, unsigned long n);
int shutdown(int fd, int how);
]])
for _, d in ipairs({ "int close(int fd);", "int usleep(unsigned usec);" }) do pcall(ffi.cdef, d) end
local C = ffi.C

local jobs = {}          -- the jobs a test started, killed after it if still running

-- Starts `sluice run script` in the background: a job with signal(name) and wait() ->
-- exit code, stderr.
local function start(script, args)
  local dir = h.tmpdir()
  local job = { dir = dir, out = h.path(dir, "stdout"), err = h.path(dir, "stderr") }
  os.execute(string.format("(%s run %s %s >%s 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s) &",
    h.q(h.bin()), h.q(script), args or "", h.q(job.out), h.q(job.err),
    h.q(h.path(dir, "pid")), h.q(h.path(dir, "rc"))))
  h.wait_until("the job to start", function()
    job.pid = (h.read(h.path(dir, "pid")) or ""):match("%d+")
    return job.pid ~= nil
  end)
  jobs[#jobs + 1] = job
  function job.signal(name) os.execute("kill -" .. name .. " " .. job.pid) end
  function job.running() return not (h.read(h.path(dir, "rc")) or ""):match("%d") end
  function job.wait()
    h.wait_until("the job to exit", function() return not job.running() end)
    local stderr = h.read(job.err) or ""
    if stderr:find("ERROR: AddressSanitizer", 1, true) or stderr:find("runtime error:", 1, true) then
      error("sanitizer report:\n" .. stderr, 2)
    end
    return tonumber(h.read(h.path(dir, "rc")):match("%d+")), stderr
  end
  return job
end

-- A job: http source on 127.0.0.1:port (extra options `opts`, Lua text) -> file `out`.
local function http_to_file(port, out, opts)
  return start(h.script(string.format([[
local sl = require "sluice"
sl.source.http { listen = "127.0.0.1:%d"%s }
  :sink(sl.sink.file { path = %q, format = "json" })
]], port, opts and (", " .. opts) or "", out)))
end

-- A connection that reads replies: conn:send(bytes), conn:replies(n) -> the next n replies
-- ({status, headers (lowercased names), body}) and conn:closed() -> whether the job closed
-- it (the next read gives end of file).
local function connect(port)
  local conn = { fd = h.dial(port), buf = "" }
  local chunk = ffi.new("char[65536]")
  -- Reads what comes within ms; false at end of file.
  local function fill(ms)
    local p = ffi.new("struct sl_http_pollfd[1]")
    p[0].fd, p[0].events = conn.fd, 1                  -- POLLIN
    if C.poll(p, 1, ms) <= 0 then return true end
    local n = tonumber(C.read(conn.fd, chunk, 65536))
    if n <= 0 then return false end
    conn.buf = conn.buf .. ffi.string(chunk, n)
    return true
  end
  local function one()
    local head, rest = conn.buf:match("^(.-\r\n)\r\n(.*)$")
    if not head then return nil end
    local status = tonumber(head:match("^HTTP/1%.1 (%d%d%d)"))
    local headers = {}
    for k, v in head:gmatch("\n([^:\r\n]+): ([^\r\n]*)") do headers[k:lower()] = v end
    local len = tonumber(headers["content-length"] or 0)
    if #rest < len then return nil end
    conn.buf = rest:sub(len + 1)
    return { status = status, headers = headers, body = rest:sub(1, len) }
  end
  function conn.send(s) h.send_all(conn.fd, s) end
  function conn.replies(n)
    local got = {}
    for _ = 1, 1000 do
      local r = one()
      if r then
        if r.status ~= 100 then got[#got + 1] = r end
        if #got == n then return got end
      elseif not fill(50) then break end
    end
    error(string.format("expected %d replies, got %d (then %q)", n, #got, conn.buf), 2)
  end
  function conn.closed()
    for _ = 1, 200 do
      if not fill(50) then return true end
    end
    return false
  end
  function conn.close() C.close(conn.fd) end
  return conn
end

-- A POST of body to path (default "/") on a keep-alive connection.
local function post(body, path, extra)
  return string.format("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s",
    path or "/", #body, extra or "", body)
end

-- The lines of a file, each decoded.
local function records(path)
  local t = {}
  for _, l in ipairs(h.lines(h.read(path) or "")) do t[#t + 1] = sl.json.encode(sl.json.decode(l)) end
  return t
end

local function stop(job)
  job.signal("TERM")
  local code, stderr = job.wait()
  assert.are.equal(0, code, stderr)
  return stderr
end

describe("source.http", function()
  after_each(function()
    for i, job in ipairs(jobs) do
      if job.running() then job.signal("KILL") end
      jobs[i] = nil
    end
    h.cleanup()
  end)

  it("answers each request of a keep-alive connection, pipelined or not, once its records are in", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out)
    local c = connect(port)
    c.send(post('{"i":1}\n{"i":2}\n'))
    local r = c.replies(1)[1]
    assert.are.equal(200, r.status)
    assert.are.equal('{"accepted":2}\n', r.body)
    assert.are.equal("application/json", r.headers["content-type"])
    -- two requests in one write: answered in order, on the same connection
    c.send(post('{"i":3}') .. post('{"i":4}\n{"i":5}\n\n'))
    local rs = c.replies(2)
    assert.are.same({ 200, 200 }, { rs[1].status, rs[2].status })
    assert.are.same({ '{"accepted":1}\n', '{"accepted":2}\n' }, { rs[1].body, rs[2].body })
    -- a body that arrives in pieces, the head in another write than the body
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Le")
    C.usleep(20000)
    c.send('ngth: 7\r\n\r\n{"i"')
    C.usleep(20000)
    c.send(':6}')
    assert.are.equal('{"accepted":1}\n', c.replies(1)[1].body)
    assert.is_false(c.closed())
    c.close()
    stop(job)
    h.same_lines({ '{"i":1}', '{"i":2}', '{"i":3}', '{"i":4}', '{"i":5}', '{"i":6}' }, records(out))
  end)

  it("takes chunked bodies, and curl's requests with Expect: 100-continue", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out, 'path = "/ingest", format = "lines"')
    local c = connect(port)
    c.send("POST /ingest?src=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" ..
      "5\r\nab\nc\n\r\n")
    C.usleep(20000)
    c.send("3\r\nd\ne\r\n0\r\n\r\n")
    local r = c.replies(1)[1]
    assert.are.equal(200, r.status)
    assert.are.equal('{"accepted":4}\n', r.body)
    c.close()
    -- 2000 lines (curl sends Expect: 100-continue above 1 KiB and waits for it)
    local lines = {}
    for i = 1, 2000 do lines[i] = "line " .. i end
    local body = h.write(h.path(h.tmpdir(), "body"), table.concat(lines, "\n") .. "\n")
    local p = io.popen(string.format("curl -s -S --data-binary @%s -w ' %%{http_code}' " ..
      "http://127.0.0.1:%d/ingest", h.q(body), port))
    local said = p:read("*a")
    p:close()
    assert.are.equal('{"accepted":2000}\n 200', said)
    stop(job)
    local want = { '"ab"', '"c"', '"d"', '"e"' }
    for i = 1, 2000 do want[#want + 1] = '"line ' .. i .. '"' end
    h.same_lines(want, h.lines(h.read(out)))
  end)

  it("answers 400 listing the bad lines, dead-letters them, and lets the others flow", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out)
    local c = connect(port)
    c.send(post('{"i":1}\nnot json\n{"i":2}\n{"i":\n{"i":3}'))
    local r = c.replies(1)[1]
    assert.are.equal(400, r.status)
    assert.are.same({ accepted = 3, rejected = 2, errors = {
      { line = 2, error = "json: bad literal at byte 0 (expected null)" },
      { line = 4, error = "json: unexpected end of input at byte 5" } } }, sl.json.decode(r.body))
    -- the connection goes on
    c.send(post('{"i":4}'))
    assert.are.equal(200, c.replies(1)[1].status)
    c.close()
    local stderr = stop(job)
    h.same_lines({ '{"i":1}', '{"i":2}', '{"i":3}', '{"i":4}' }, records(out))
    local dead = h.json_lines(stderr, sl.json.decode)
    assert.are.equal(2, #dead)
    assert.are.same({ "not json", 2 }, { dead[1].record, dead[1].line })
    assert.are.same({ '{"i":', 4 }, { dead[2].record, dead[2].line })
    h.contains(dead[1].reason, "http 127.0.0.1:" .. port .. " from 127.0.0.1:")
    h.contains(dead[1].reason, ", request 1: json: bad literal at byte 0 (expected null)")
    assert.are.equal("http 127.0.0.1:" .. port .. "/", dead[1].source)
  end)

  it("answers 404 to another path and 405 with Allow: POST to another method", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out, 'path = "/in"')
    local c = connect(port)
    c.send(post('{"i":1}', "/elsewhere") .. "GET /in HTTP/1.1\r\nHost: x\r\n\r\n" ..
      post('{"i":2}', "/in"))
    local rs = c.replies(3)
    assert.are.same({ 404, 405, 200 }, { rs[1].status, rs[2].status, rs[3].status })
    assert.are.same({ error = "no such path: /elsewhere (records are POSTed to /in)" },
      sl.json.decode(rs[1].body))
    assert.are.same({ error = "method GET not allowed on /in (POST records to it)" },
      sl.json.decode(rs[2].body))
    assert.are.equal("POST", rs[2].headers["allow"])
    c.close()
    stop(job)
    h.same_lines({ '{"i":2}' }, records(out))
  end)

  it("answers 413 to a body over max_body, without reading it, and dead-letters the request", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out, "max_body = 100")
    local other = connect(port)
    -- declared too long: refused from its head, the connection closed
    local c = connect(port)
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" .. ("x"):rep(200))
    local r = c.replies(1)[1]
    assert.are.equal(413, r.status)
    assert.are.same({ error = "body of 5000 bytes over max_body (100 bytes)" }, sl.json.decode(r.body))
    assert.are.equal("close", r.headers["connection"])
    assert.is_true(c.closed())
    c.close()
    -- chunked: refused at the chunk that passes the limit
    c = connect(port)
    c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" ..
      "40\r\n" .. ("y"):rep(64) .. "\r\n40\r\n" .. ("y"):rep(64) .. "\r\n")
    r = c.replies(1)[1]
    assert.are.equal(413, r.status)
    assert.are.same({ error = "body over max_body (100 bytes)" }, sl.json.decode(r.body))
    assert.is_true(c.closed())
    c.close()
    -- a body at the limit is taken, on a connection opened before
    other.send(post(('{"s":"%s"}'):format(("z"):rep(92))))
    assert.are.equal(200, other.replies(1)[1].status)
    other.close()
    local stderr = stop(job)
    assert.are.equal(1, #records(out))
    local dead = h.json_lines(stderr, sl.json.decode)
    assert.are.equal(2, #dead)
    h.contains(dead[1].reason, ", request 1: body of 5000 bytes over max_body (100 bytes)")
    assert.are.equal("POST /", dead[1].record)
    h.contains(dead[2].reason, ", request 1: body over max_body (100 bytes)")
  end)

  it("answers malformed HTTP 400 and closes that connection, harming no other", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out)
    local good = connect(port)
    good.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"i\":")   -- in flight
    local bad = connect(port)
    bad.send("HELLO THERE\r\n\r\n")
    local r = bad.replies(1)[1]
    assert.are.equal(400, r.status)
    assert.are.same({ error = "malformed request: invalid HTTP method (HPE_INVALID_METHOD)" },
      sl.json.decode(r.body))
    assert.is_true(bad.closed())
    bad.close()
    -- a request cut short by its client is dead-lettered too
    local cut = connect(port)
    cut.send("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"i\"")
    C.shutdown(cut.fd, 1)                               -- SHUT_WR
    assert.are.equal(400, cut.replies(1)[1].status)
    cut.close()
    good.send('1}')
    assert.are.equal('{"accepted":1}\n', good.replies(1)[1].body)
    good.close()
    local stderr = stop(job)
    h.same_lines({ '{"i":1}' }, records(out))
    local dead = h.json_lines(stderr, sl.json.decode)
    assert.are.equal(2, #dead)
    h.contains(dead[1].reason, "request 1: malformed request: invalid HTTP method (HPE_INVALID_METHOD)")
    assert.are.equal("HELLO THERE\r\n\r\n", dead[1].record)
    h.contains(dead[2].reason, "request 1: malformed request: the connection closed in the middle of a request")
  end)

  it("answers 503 with Retry-After while a slow sink holds the sources back, 200 again after", function()
    local dir = h.tmpdir()
    local port, to = h.port(), h.port()
    local peer_out = h.path(dir, "peer.json")
    -- the sink's peer is not there yet: what the sink is given waits in its queue
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.http { listen = "127.0.0.1:%d" }
  :sink(sl.sink.tcp { connect = "127.0.0.1:%d", format = "json", high = 100 })
]], port, to)))
    local c = connect(port)
    c.send(post('{"i":1}\n{"i":2}\n{"i":3}\n{"i":4}\n{"i":5}\n{"i":6}\n{"i":7}\n{"i":8}\n' ..
      '{"i":9}\n{"i":10}\n{"i":11}\n{"i":12}\n{"i":13}\n{"i":14}\n'))
    assert.are.equal(200, c.replies(1)[1].status)
    c.send(post('{"refused":1}'))
    local r = c.replies(1)[1]
    assert.are.equal(503, r.status)
    assert.are.equal("1", r.headers["retry-after"])
    assert.is_nil(r.headers["connection"])              -- the connection stays
    -- the peer comes: the queue drains, the sources resume
    os.execute(string.format("luajit tests/peers/tcp.lua read %d 100000000 %s >/dev/null 2>&1 &",
      to, h.q(peer_out)))
    local status
    h.wait_until("a 200 after the sink caught up", function()
      c.send(post('{"i":15}'))
      status = c.replies(1)[1].status
      if status ~= 200 then C.usleep(50000) end
      return status == 200
    end)
    c.close()
    stop(job)
    local want = {}
    for i = 1, 15 do want[i] = ('{"i":%d}'):format(i) end
    h.wait_lines(peer_out, 15)
    h.same_lines(want, records(peer_out))
  end)

  it("on SIGTERM answers the request in flight, closes idle connections, then ends", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out)
    local idle = connect(port)
    idle.send(post('{"i":1}'))
    assert.are.equal(200, idle.replies(1)[1].status)
    local busy = connect(port)
    busy.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n{\"i\":2}\n")
    C.usleep(300000)                                    -- (the job has read it: in flight)
    job.signal("TERM")
    assert.is_true(idle.closed())                       -- nothing in flight there
    C.usleep(200000)
    assert.is_true(job.running())                       -- waiting for the request in flight
    busy.send('{"i":3}\n')
    local r = busy.replies(1)[1]
    assert.are.equal('{"accepted":2}\n', r.body)
    assert.are.equal("close", r.headers["connection"])
    assert.is_true(busy.closed())
    idle.close()
    busy.close()
    local code, stderr = job.wait()
    assert.are.equal(0, code, stderr)
    h.same_lines({ '{"i":1}', '{"i":2}', '{"i":3}' }, records(out))
  end)

  it("says HTTP/1.0 and Connection: close end the connection after the reply", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out)
    local c = connect(port)
    c.send('POST / HTTP/1.0\r\nContent-Length: 7\r\n\r\n{"i":1}')
    assert.are.equal("close", c.replies(1)[1].headers["connection"])
    assert.is_true(c.closed())
    c.close()
    c = connect(port)
    c.send(post('{"i":2}', "/", "Connection: close\r\n") .. post('{"never":1}'))
    assert.are.equal(200, c.replies(1)[1].status)
    assert.is_true(c.closed())
    c.close()
    stop(job)
    h.same_lines({ '{"i":1}', '{"i":2}' }, records(out))
  end)

  it("serves many connections at once, each request answered on its own connection", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = http_to_file(port, out)
    local conns, want = {}, {}
    for i = 1, 50 do conns[i] = connect(port) end
    for round = 1, 3 do
      for i, c in ipairs(conns) do                    -- interleaved over the connections
        c.send(post(('{"c":%d,"r":%d}\n'):format(i, round)))
        want[#want + 1] = ('{"c":%d,"r":%d}'):format(i, round)
      end
    end
    for i, c in ipairs(conns) do
      local rs = c.replies(3)
      for k = 1, 3 do assert.are.equal('{"accepted":1}\n', rs[k].body, "connection " .. i) end
      if i % 2 == 0 then c.close() end                -- half close, half stay for the drain
    end
    stop(job)
    for i, c in ipairs(conns) do
      if i % 2 == 1 then
        assert.is_true(c.closed())
        c.close()
      end
    end
    local got = records(out)
    table.sort(want)
    table.sort(got)
    h.same_lines(want, got)
  end)

  it("listens on every worker with --workers (SO_REUSEPORT), and every request's records are in", function()
    local port, out = h.port(), h.path(h.tmpdir(), "out.json")
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.http { listen = "127.0.0.1:%d" }
  :key_by("k")
  :sink(sl.sink.file { path = %q, format = "json" })
]], port, out)), "--workers 2")
    local want = {}
    for i = 1, 10 do
      local c = connect(port)                           -- a connection each: the kernel
      c.send(post(('{"k":%d}\n{"k":%d}\n'):format(i, -i))) -- spreads them over the workers
      assert.are.equal('{"accepted":2}\n', c.replies(1)[1].body)
      c.close()
      want[#want + 1], want[#want + 2] = ('{"k":%d}'):format(i), ('{"k":%d}'):format(-i)
    end
    stop(job)
    local got = records(out)
    table.sort(want)
    table.sort(got)
    h.same_lines(want, got)
  end)

  it("checks its options at the user's line", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.http { lisen = "127.0.0.1:1", format = "xml", max_body = 0, path = "x" }
  :sink(sl.sink.null())
]])
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 2)
    for _, want in ipairs({
      "source.http(): unknown option lisen (did you mean listen?)",
      'source.http(): listen is required (a string "host:port"), got nil',
      'source.http(): unknown format "xml" (lines, json, csv, msgpack)',
      "source.http(): max_body must be a whole number of bytes from 1 to 2^30, got 0",
      'source.http(): path must be a string starting with "/" (no spaces, "?" or "#"), got x',
    }) do
      h.contains(res.stderr, script .. ":2: " .. want)
    end
  end)

  it("says which address it could not listen on", function()
    local port = h.port()
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.http { listen = "127.0.0.1:%d" }:sink(sl.sink.null())
sl.source.http { listen = "127.0.0.1:%d" }:sink(sl.sink.null())
]], port, port))
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 1)
    h.contains(res.stderr, ("http 127.0.0.1:%d: listen: address already in use"):format(port))
  end)
end)
