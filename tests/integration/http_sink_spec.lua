-- sl.sink.http against a real HTTP server (tests/peers/http_server.py, which logs every
-- request it gets: its connection, its status and its body): the exact records arrive, in
-- whole batches, over one kept-alive connection; 5xx and refused connections are retried
-- until everything is delivered; a 4xx dead-letters exactly that batch; HTTPS; the end of
-- a bounded job reports what the server never took.
local h = require "tests.helpers"
local sl = require "sluice"

local PEER = "tests/peers/http_server.py"

-- A server on a free port. opts: args (a string of the peer's options), delay (seconds
-- before it starts listening: a server down at first). Returns { port, log, pid, url }.
local peers = {}
local function start_peer(opts)
  opts = opts or {}
  local port, dir = h.port(), h.tmpdir()
  local log, out = h.path(dir, "requests.jsonl"), h.path(dir, "peer.out")
  local cmd = string.format("(%sexec python3 %s %d %s %s) >%s 2>&1 & echo $!",
    opts.delay and string.format("sleep %s; ", opts.delay) or "", PEER, port, h.q(log),
    opts.args or "", h.q(out))
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("*l"))
  p:close()
  local peer = { port = port, log = log, out = out, pid = pid,
    url = string.format("%s://127.0.0.1:%d/ingest", opts.tls and "https" or "http", port) }
  peers[#peers + 1] = peer
  if not opts.delay then
    h.wait_until("the HTTP peer listening on " .. port, function()
      return (h.read(out) or ""):find("listening", 1, true) ~= nil
    end)
  end
  return peer
end

-- The requests the peer logged, in order.
local function requests(peer)
  local t = {}
  for _, l in ipairs(h.lines(h.read(peer.log) or "")) do t[#t + 1] = sl.json.decode(l) end
  return t
end

-- The records of a request's JSON-lines body.
local function records_of(req)
  local t = {}
  for _, l in ipairs(h.lines(req.body)) do t[#t + 1] = sl.json.decode(l) end
  return t
end

-- The requests the peer answered with 2xx, and the `i` of every record in them, in order.
local function delivered(peer)
  local ok, ids = {}, {}
  for _, req in ipairs(requests(peer)) do
    if req.status >= 200 and req.status < 300 then
      ok[#ok + 1] = req
      for _, r in ipairs(records_of(req)) do ids[#ids + 1] = r.i end
    end
  end
  return ok, ids
end

local function range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

local function dead_letters(s)
  local t = {}
  for _, d in ipairs(h.json_lines(s, sl.json.decode)) do
    if d.reason ~= nil then t[#t + 1] = d end
  end
  return t
end

-- Runs a job of `count` generated records {i=1..count} (tag="poison" on record `poison`)
-- into sl.sink.http{url=url, <sink options>}.
local function job(count, url, sink_opts, args, extra)
  local script = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = %d, %s
  fn = function(i) return { i = i, tag = i == %d and "poison" or "ok" } end }
  :sink(sl.sink.http { url = %q, %s })
]], count, extra or "", (sink_opts and sink_opts.poison) or -1, url, sink_opts and sink_opts.text or ""))
  return h.run("run " .. h.q(script) .. " " .. (args or ""))
end

-- Starts `sluice run script args` in the background; returns { kill(sig), wait() -> exit
-- status, stderr() }.
local jobs = {}
local function background(script, args, dir)
  local n = #jobs + 1
  local pidfile, rcfile, errfile = h.path(dir, "pid" .. n), h.path(dir, "rc" .. n),
    h.path(dir, "err" .. n)
  os.execute(string.format("(%s run %s %s >/dev/null 2>%s </dev/null & echo $! >%s; " ..
    "wait $!; echo $? >%s) 2>/dev/null &", h.q(h.bin()), h.q(script), args, h.q(errfile),
    h.q(pidfile), h.q(rcfile)))
  local pid
  h.wait_until("the job's pid", function()
    pid = (h.read(pidfile) or ""):match("%d+")
    return pid ~= nil
  end)
  local p = {}
  function p.kill(sig) os.execute("kill -" .. sig .. " " .. pid .. " 2>/dev/null") end
  function p.ended() return (h.read(rcfile) or ""):match("%d") ~= nil end
  function p.wait()
    h.wait_until("the job's end", p.ended)
    return tonumber((h.read(rcfile) or ""):match("%d+"))
  end
  function p.stderr() return h.read(errfile) or "" end
  jobs[n] = p
  return p
end

describe("sink.http", function()
  after_each(function()
    for _, p in ipairs(peers) do
      os.execute(string.format("kill %d 2>/dev/null; while kill -0 %d 2>/dev/null; do sleep 0.05; done",
        p.pid, p.pid))
    end
    peers = {}
    for _, bg in ipairs(jobs) do
      if not bg.ended() then bg.kill("KILL"); bg.wait() end
    end
    jobs = {}
    h.cleanup()
  end)

  it("delivers every record once, in whole batches of `batch`, over one kept-alive connection", function()
    local peer = start_peer()
    local res = job(1234, peer.url, { text = "batch = 100" })
    h.expect_code(res, 0)
    local reqs = requests(peer)
    assert.are.equal(13, #reqs, h.describe(res))
    for k, req in ipairs(reqs) do
      assert.are.equal(200, req.status)
      assert.are.equal("POST", req.method)
      assert.are.equal("/ingest", req.path)
      assert.are.equal("application/x-ndjson", req.content_type)
      assert.are.equal(1, req.conn, "request " .. k .. " came on a new connection")
      local recs = records_of(req)
      assert.are.equal(k < 13 and 100 or 34, #recs)
      for j, r in ipairs(recs) do assert.are.equal((k - 1) * 100 + j, r.i) end
    end
    local _, ids = delivered(peer)
    assert.are.same(range(1, 1234), ids)
  end)

  it("sends a batch once `every` has passed since its first record", function()
    local peer = start_peer()
    local res = job(12, peer.url, { text = 'batch = 500, every = "100ms"' }, "", "rate = 20,")
    h.expect_code(res, 0)
    local ok, ids = delivered(peer)
    assert.are.same(range(1, 12), ids)
    assert.is_true(#ok >= 3, "expected the 12 records over 0.6 s in several requests, got "
      .. #ok)
  end)

  it("takes method, format and headers", function()
    local peer = start_peer()
    local res = job(3, peer.url, { text = 'method = "PUT", format = "lines", ' ..
      'headers = { ["Content-Type"] = "text/x-test", ["X-Token"] = "abc" }' })
    h.expect_code(res, 0)
    local reqs = requests(peer)
    assert.are.equal(1, #reqs)
    assert.are.equal("PUT", reqs[1].method)
    assert.are.equal("text/x-test", reqs[1].content_type)
  end)

  it("retries a 5xx with the same batch until it is taken: every record delivered once", function()
    local peer = start_peer { args = "--fail-first 3" }
    local res = job(250, peer.url, { text = "batch = 100" })
    h.expect_code(res, 0)
    local reqs = requests(peer)
    assert.are.equal(6, #reqs, h.describe(res))
    for k = 1, 3 do
      assert.are.equal(500, reqs[k].status)
      -- the failed tries carried the first batch, whole
      assert.are.same(range(1, 100), (function()
        local t = {}
        for _, r in ipairs(records_of(reqs[k])) do t[#t + 1] = r.i end
        return t
      end)())
    end
    local ok, ids = delivered(peer)
    assert.are.equal(3, #ok)
    assert.are.same(range(1, 250), ids)
    h.contains(res.stderr, "sink.http " .. peer.url .. ": HTTP 500; retrying", "stderr")
    h.contains(res.stderr, "sink.http " .. peer.url .. ": delivering again", "stderr")
    local _, said = res.stderr:gsub("retrying", "")
    assert.are.equal(1, said, "the outage is said once:\n" .. res.stderr)
  end)

  it("retries a request that times out, with the same batch", function()
    local peer = start_peer { args = "--hang-first 2" }
    local res = job(250, peer.url, { text = 'batch = 100, timeout = "300ms"' })
    h.expect_code(res, 0)
    local reqs = requests(peer)
    assert.are.equal(0, reqs[1].status)
    assert.are.equal(0, reqs[2].status)
    assert.are.equal(reqs[1].body, reqs[2].body)
    local ok, ids = delivered(peer)
    assert.are.equal(3, #ok)
    assert.are.equal(reqs[1].body, ok[1].body)
    assert.are.same(range(1, 250), ids)
    h.contains(res.stderr, "Operation timed out after", "stderr")
    h.contains(res.stderr, "delivering again", "stderr")
  end)

  it("runs on every worker of --workers", function()
    local peer = start_peer()
    local dir = h.tmpdir()
    local function script(sink)
      return h.script(string.format([[
local sl = require "sluice"
sl.source.nexmark { events = 20000, rate = 100000 }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return { auction = e.bid.auction, t = e.bid.date_time, p = e.bid.price } end)
  :key_by("auction")
  :sink(%s)
]], sink))
    end
    local out = h.path(dir, "out.jsonl")
    h.expect_code(h.run("run " .. h.q(script(string.format('sl.sink.file { path = %q, format = "json" }',
      out))) .. " --workers 2"), 0)
    h.expect_code(h.run("run " .. h.q(script(string.format("sl.sink.http { url = %q, batch = 100 }",
      peer.url))) .. " --workers 2"), 0)
    local got = {}
    for _, req in ipairs(delivered(peer)) do
      for _, l in ipairs(h.lines(req.body)) do got[#got + 1] = l end
    end
    local want = h.lines(h.read(out))
    table.sort(want)
    table.sort(got)
    assert.is_true(#want > 10000)
    assert.are.same(want, got)
  end)

  it("waits for a server that is down at first, then delivers everything", function()
    local peer = start_peer { delay = 1.5 }
    local res = job(1000, peer.url, { text = "batch = 100" })
    h.expect_code(res, 0)
    local ok, ids = delivered(peer)
    assert.are.equal(10, #ok)
    assert.are.same(range(1, 1000), ids)
    h.contains(res.stderr, "connection refused; retrying", "stderr")
    h.contains(res.stderr, "delivering again", "stderr")
  end)

  it("dead-letters exactly the records of a batch the server refuses with a 4xx", function()
    local peer = start_peer { args = "--reject poison" }
    local res = job(100, peer.url, { text = "batch = 10", poison = 25 })
    h.expect_code(res, 0)
    local ok, ids = delivered(peer)
    assert.are.equal(9, #ok)
    local want = {}
    for i = 1, 100 do if i < 21 or i > 30 then want[#want + 1] = i end end
    assert.are.same(want, ids)
    local dl = dead_letters(res.stderr)
    assert.are.equal(10, #dl, res.stderr)
    for k, d in ipairs(dl) do
      assert.are.equal(20 + k, d.record.i)
      assert.are.equal("sink.http " .. peer.url, d.sink)
      assert.are.equal("sink.http " .. peer.url .. ": HTTP 400: rejected: poison", d.reason)
    end
  end)

  it("with parallel=4, delivers every record once in whole batches, through failures", function()
    local peer = start_peer { args = "--fail-first 3" }
    local res = job(5000, peer.url, { text = "batch = 100, parallel = 4" })
    h.expect_code(res, 0)
    local ok, ids = delivered(peer)
    assert.are.equal(50, #ok)
    local seen = {}
    for _, req in ipairs(ok) do
      local recs = records_of(req)
      assert.are.equal(100, #recs)
      assert.are.equal(1, recs[1].i % 100, "a batch starts at 100k + 1")
      for j = 2, #recs do assert.are.equal(recs[1].i + j - 1, recs[j].i) end
    end
    for _, i in ipairs(ids) do
      assert.is_nil(seen[i], "record " .. i .. " delivered twice")
      seen[i] = true
    end
    assert.are.equal(5000, #ids)
  end)

  it("holds the sources back while bodies wait, losing nothing", function()
    local peer = start_peer { args = "--fail-first 5" }
    local res = job(5000, peer.url, { text = "batch = 50, high = 2000" })
    h.expect_code(res, 0)
    local ok, ids = delivered(peer)
    -- (a batch paused sources left short goes when `every` has passed)
    for _, req in ipairs(ok) do assert.is_true(#records_of(req) <= 50) end
    assert.are.same(range(1, 5000), ids)
  end)

  it("speaks HTTPS: cacert= trusts a server's certificate, insecure=true any", function()
    local dir = h.tmpdir()
    local cert, key = h.path(dir, "cert.pem"), h.path(dir, "key.pem")
    local made = os.execute(string.format("openssl req -x509 -newkey rsa:2048 -nodes -days 1 " ..
      "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost " ..
      "-keyout %s -out %s >/dev/null 2>&1", h.q(key), h.q(cert)))
    assert.is_truthy(made == 0 or made == true, "openssl could not make a certificate")
    local peer = start_peer { args = "--tls " .. h.q(cert) .. " " .. h.q(key), tls = true }
    local res = job(300, peer.url, { text = string.format("batch = 100, cacert = %q", cert) })
    h.expect_code(res, 0)
    local _, ids = delivered(peer)
    assert.are.same(range(1, 300), ids)
    assert.are.equal(1, requests(peer)[3].conn)

    res = job(20, peer.url, { text = "insecure = true" })
    h.expect_code(res, 0)
    _, ids = delivered(peer)
    assert.are.equal(320, #ids)

    -- without either, the self-signed certificate is refused, retried, and reported
    res = job(20, peer.url, {}, "--drain-timeout 1s")
    assert.are_not.equal(0, res.code, h.describe(res))
    h.contains(res.stderr, "certificate", "stderr")
    h.contains(res.stderr, "20 records in 1 batch not delivered", "stderr")
  end)

  it("reports what it could not deliver at the end of a bounded job, and fails", function()
    local res = job(1000, "http://127.0.0.1:" .. h.port() .. "/", { text = "batch = 100" },
      "--drain-timeout 1s")
    assert.are.equal(1, res.code, h.describe(res))
    h.contains(res.stderr, "1000 records in 10 batches not delivered", "stderr")
    h.contains(res.stderr, "nothing was delivered for 1s (--drain-timeout)", "stderr")
  end)

  it("delivers the batches taken before a checkpoint before the checkpoint completes", function()
    local peer = start_peer()
    local state = h.tmpdir()
    local res = job(3000, peer.url, { text = "batch = 100" },
      "--state-dir " .. h.q(state) .. " --checkpoint-every 50ms", "rate = 10000,")
    h.expect_code(res, 0)
    local _, ids = delivered(peer)
    assert.are.same(range(1, 3000), ids)
    h.not_contains(res.stderr, "checkpoint not taken", "stderr")
  end)

  it("delivers every record at least once across kill -9 and a restart from a checkpoint", function()
    -- the server takes 7 requests, then fails 6 (an outage of 3 to 6 s of backoff), then
    -- takes the rest; the job is killed during the outage, restarted, and ends
    local peer = start_peer { args = "--fail-from 8 --fail-first 6" }
    local dir = h.tmpdir()
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = 4000, rate = 1000, fn = function(i) return { i = i } end }
  :sink(sl.sink.http { url = %q, batch = 100, every = "50ms" })
]], peer.url))
    local args = "--state-dir " .. h.q(h.path(dir, "state")) .. " --checkpoint-every 100ms"
    local killed = background(script, args, dir)
    h.sleep_ms(2000)
    killed.kill("KILL")
    assert.are.equal(137, killed.wait(), killed.stderr())
    local _, before = delivered(peer)
    assert.is_true(#before > 0 and #before < 4000, "delivered before the kill: " .. #before)
    -- while the server failed, no checkpoint could cover the batches it had not taken
    local said = killed.stderr():match("checkpoint not taken: sink%.http [^\n]-: %d+ batch[es]* " ..
      "not delivered yet %(HTTP 500%)")
    assert.is_truthy(said, "the killed run's stderr:\n" .. killed.stderr())
    local res = h.run("run " .. h.q(script) .. " " .. args)
    h.expect_code(res, 0)
    local seen, ok = {}, delivered(peer)
    for _, req in ipairs(ok) do
      local recs = records_of(req)
      -- each body is one whole batch: consecutive records
      for j = 2, #recs do assert.are.equal(recs[1].i + j - 1, recs[j].i) end
      for _, r in ipairs(recs) do seen[r.i] = true end
    end
    for i = 1, 4000 do assert.is_true(seen[i], "record " .. i .. " was never delivered") end
  end)

  it("says at the script's line what is wrong with its options", function()
    local script = h.script('local sl = require "sluice"\n' ..
      'sl.source.generator { count = 1 }:sink(sl.sink.http { batch = 0, every = "soon" })\n')
    local res = h.run("run " .. h.q(script))
    assert.are.equal(2, res.code, h.describe(res))
    h.contains(res.stderr, script .. ":2: sink.http(): url is required", "stderr")
    h.contains(res.stderr, script .. ":2: sink.http(): batch must be a whole number of records >= 1",
      "stderr")
    h.contains(res.stderr, script .. ':2: sink.http(): every: bad duration "soon"', "stderr")
  end)
end)
