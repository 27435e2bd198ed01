-- sluice run --group: one job on several member processes sharing a Kafka topic's
-- partitions (group.lua), on librdkafka's mock brokers (tests/kafka/cluster.lua). The
-- reference model is a single process's result: per key, rolling counts 1..n each once,
-- and per key and window, the count of the records in it.
local h = require "tests.helpers"
local cluster = require "tests.kafka.cluster"
local core = require("sluice.host").core

local USERS = 24

-- librdkafka options of the members: a killed member leaves its group after 3 s (the
-- default 45 s would make a spec wait that long), and heartbeats tell the others soon.
local MEMBER_OPTIONS = 'options = { ["session.timeout.ms"] = 3000, ["heartbeat.interval.ms"] = 300 }'

-- Waits until pred() holds, asking every 200 ms for at most `seconds` (kcat takes a
-- while each time: h.wait_until counts its tries, not the time).
local function wait_for(what, pred, seconds)
  local deadline = os.time() + seconds
  while os.time() <= deadline do
    if pred() then return end
    h.sleep_ms(200)
  end
  error("timed out after " .. seconds .. " s waiting for " .. what, 2)
end

local function script(k, body, name)
  body = body:gsub("BROKERS", k.bootstrap):gsub("MEMBER_OPTIONS", MEMBER_OPTIONS)
  return h.script('local sl = require "sluice"\n' .. body, name)
end

-- n records { user, i } as JSON messages keyed by user (so the partition is the user's),
-- numbered from `first`.
local function produce(k, topic, first, n)
  local values, keys = {}, {}
  for i = first, first + n - 1 do
    local user = "u" .. (i % USERS)
    values[#values + 1] = string.format('{"user":"%s","i":%d,"ts":%d}', user, i, 1700000000000 + i * 100)
    keys[#keys + 1] = user
  end
  k:produce(topic, values, { keys = keys })
end

-- The partitions a member says it holds now: its stderr's "assigned" and "revoked" lines.
local function held(member, topic)
  local parts = {}
  for line in member.stderr():gmatch("[^\n]+") do
    local what, list = line:match("^sluice: %-%-group %S+: (%a+) (%S+)")
    if what == "assigned" or what == "revoked" then
      for t, p in list:gmatch("([^,:]+):(%d+)") do
        if t == topic then parts[tonumber(p)] = what == "assigned" or nil end
      end
    end
  end
  return parts
end

-- Waits until the members together hold every one of `n` partitions of `topic`, each
-- on one member, and each member holds some.
local function wait_split(members, topic, n)
  wait_for("the members to split " .. n .. " partitions", function()
    local owner = {}
    for m, member in ipairs(members) do
      local any = false
      for p in pairs(held(member, topic)) do
        if owner[p] then return false end
        owner[p], any = m, true
      end
      if not any then return false end
    end
    for p = 0, n - 1 do if not owner[p] then return false end end
    return true
  end, 60)
end

-- The rolling counts in topic `out` ({key, n} JSON), read_committed when `committed`:
-- { [user] = { n, ... } } in the order of each partition.
local function counts(k, topic, committed)
  local by = {}
  for _, m in ipairs(k:consume(topic, { committed = committed })) do
    local r = core.json_decode(m.value)
    by[r.key] = by[r.key] or {}
    table.insert(by[r.key], r.n)
  end
  return by
end

-- Waits for `total` records in `out`, then asserts that each user's counts are 1..n,
-- each once and in order, n being how many records the user had.
local function expect_counts(k, topic, total, committed)
  local by
  wait_for(total .. " rolling counts in " .. topic, function()
    by = counts(k, topic, committed)
    local n = 0
    for _, list in pairs(by) do n = n + #list end
    return n >= total
  end, 60)
  local n = 0
  for user, list in pairs(by) do
    for i, c in ipairs(list) do
      assert.equal(i, c, user .. ": count " .. i .. " is " .. tostring(c) .. " (lost or twice)")
    end
    n = n + #list
  end
  assert.equal(total, n)
  return by
end

-- Per "user@window start", the count of the records 1..n (produced as above) in each
-- 10 s window closed once the last is read (the windows before its own minus one).
local function closed_windows(n)
  local want, closed_before = {}, 1700000000000 + n * 100 - 10000
  for i = 1, n do
    local ts = 1700000000000 + i * 100
    local w = ts - ts % 10000
    if w + 10000 <= closed_before then
      local key = "u" .. (i % USERS) .. "@" .. w
      want[key] = (want[key] or 0) + 1
    end
  end
  return want
end

-- Waits until topic `wins` ({key, window_start, n} JSON) has every window of want, then
-- asserts their counts; when `once`, also that no window is there twice.
local function expect_windows(k, want, once)
  local got
  wait_for("the closed windows", function()
    got = {}
    for _, m in ipairs(k:consume("wins")) do
      local r = core.json_decode(m.value)
      local key = r.key .. "@" .. r.window_start
      if once then assert.is_nil(got[key], "window " .. key .. " twice") end
      got[key] = r.n
    end
    for key in pairs(want) do if not got[key] then return false end end
    return true
  end, 60)
  for key, n in pairs(want) do assert.equal(n, got[key], "window " .. key) end
end

local ROLLING = [[
sl.source.kafka { brokers = "BROKERS", topic = "in", key = "user", MEMBER_OPTIONS }
  :key_by("user")
  :aggregate { n = sl.count() }
  :name("per_user")
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = "out", key = "key" EXACTLY })
]]

describe("--group", function()
  local k
  local members = {}
  local function member(s, extra)
    local m = h.background(s, "--group g --checkpoint-every 300ms " .. (extra or ""))
    members[#members + 1] = m
    return m
  end

  -- A cluster for the ROLLING job and its script, `sink_options` in its sink.
  local function start_rolling(sink_options)
    k = cluster.start { "in:6", "out:6", "g-per_user-changelog:6", "g-offsets:1" }
    return script(k, (ROLLING:gsub("EXACTLY", sink_options or "")))
  end

  -- Two members of s (with `extra` arguments), once they have split the input.
  local function two_members(s, extra)
    local a, b = member(s, extra), member(s, extra)
    wait_split({ a, b }, "in", 6)
    return a, b
  end

  -- A member of s joining `others`, once the partitions have moved.
  local function joins(s, others)
    local c = member(s)
    local all = { unpack(others) }
    all[#all + 1] = c
    wait_split(all, "in", 6)
    return c
  end

  -- Records first..first+n-1 into `in`; then exact rolling counts of all the records so far.
  local function produce_and_count(first, n)
    produce(k, "in", first, n)
    expect_counts(k, "out", first + n - 1)
  end

  after_each(function()
    if os.getenv("GROUP_SPEC_LOG") then
      for i, m in ipairs(members) do io.stderr:write("== member " .. i .. "\n" .. m.stderr()) end
    end
    for _, m in ipairs(members) do m.signal("KILL") end
    for _, m in ipairs(members) do m.wait(5000) end
    members = {}
    if k then k:stop(); k = nil end
    h.cleanup()
  end)

  it("two members split six partitions; their rolling counts per key are a single " ..
    "process's: 1..n, each once", function()
    two_members(start_rolling())
    produce_and_count(1, 600)
  end)

  it("with --workers 2 each worker is a member: two processes of two workers split six " ..
    "partitions, the counts exact", function()
    local a, b = two_members(start_rolling(), "--workers 2")
    produce_and_count(1, 600)
    a.signal("TERM")
    assert.equal(0, a.wait(30000), a.stderr())
    wait_split({ b }, "in", 6)
    produce_and_count(601, 600)
  end)

  it("a third member joins: the partitions it takes carry their state over from the " ..
    "changelog, and the counts go on", function()
    local s = start_rolling()
    local a, b = two_members(s)
    produce_and_count(1, 600)
    local c = joins(s, { a, b })
    h.contains(c.stderr(), "restored", "the new member's stderr")
    produce_and_count(601, 600)
  end)

  it("a member killed with -9 loses nothing: its partitions move, their state as of its " ..
    "last commit, read on from there; what it sent since comes again, the same", function()
    local a, b = two_members(start_rolling())
    produce_and_count(1, 600)
    produce(k, "in", 601, 600)
    b.signal("KILL")
    wait_split({ a }, "in", 6)
    -- every user's counts 1..n are there (some twice: at least once), and n is its number
    -- of records: the state restored is the commit's and the input goes on from it
    local want = {}
    for i = 1, 1200 do local u = "u" .. (i % USERS); want[u] = (want[u] or 0) + 1 end
    local by
    wait_for("every count", function()
      by = counts(k, "out")
      for u, n in pairs(want) do
        local has = {}
        for _, c in ipairs(by[u] or {}) do has[c] = true end
        for c = 1, n do if not has[c] then return false end end
      end
      return true
    end, 60)
    for u, n in pairs(want) do
      for _, c in ipairs(by[u]) do
        assert.truthy(c >= 1 and c <= n, u .. ": count " .. c .. " of " .. n .. " records")
      end
    end
  end)

  it("with exactly_once sinks, state, outputs and offsets commit together: a member " ..
    "joining moves partitions and every count is there once", function()
    local s = start_rolling(", exactly_once = true")
    local a, b = two_members(s)
    produce_and_count(1, 600)
    joins(s, { a, b })
    produce_and_count(601, 600)
  end)

  it("event-time windows per key are exact across a rebalance", function()
    k = cluster.start { "in:6", "wins:6", "g-w-changelog:6", "g-offsets:1" }
    local s = script(k, [[
sl.source.kafka { brokers = "BROKERS", topic = "in", key = "user", MEMBER_OPTIONS }
  :timestamp("ts")
  :key_by("user")
  :window(sl.tumbling "10s")
  :aggregate { n = sl.count() }
  :name("w")
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = "wins", key = "key" })
]])
    local a, b = two_members(s)
    produce(k, "in", 1, 1500)
    joins(s, { a, b })
    produce(k, "in", 1501, 1500)
    expect_windows(k, closed_windows(3000), true)
  end)

  it("repartitions a key_by off the message key through NAME-<operator>-repartition: " ..
    "rolling counts and event-time windows exact, with a member joining", function()
    k = cluster.start { "in:6", "out:6", "wins:6", "g-per_user-repartition:6",
      "g-per_user-changelog:6", "g-w-repartition:6", "g-w-changelog:6", "g-offsets:1" }
    -- the messages are keyed by something else: the user's records are in every partition
    local s = script(k, [[
local src = sl.source.kafka { brokers = "BROKERS", topic = "in", MEMBER_OPTIONS }
src:key_by("user")
  :aggregate { n = sl.count() }
  :name("per_user")
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = "out", key = "key" })
src:timestamp("ts")
  :key_by("user")
  :window(sl.tumbling "10s")
  :aggregate { n = sl.count() }
  :name("w")
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = "wins", key = "key" })
]])
    local function produce_spread(first, n)
      local values, keys = {}, {}
      for i = first, first + n - 1 do
        values[#values + 1] = string.format('{"user":"u%d","i":%d,"ts":%d}', i % USERS, i,
          1700000000000 + i * 100)
        keys[#keys + 1] = "m" .. i
      end
      k:produce("in", values, { keys = keys })
    end
    local a, b = two_members(s)
    produce_spread(1, 1500)
    expect_counts(k, "out", 1500)
    local c = joins(s, { a, b })
    wait_split({ a, b, c }, "g-per_user-repartition", 6)
    produce_spread(1501, 1500)
    expect_counts(k, "out", 3000)
    expect_windows(k, closed_windows(3000), false)
  end)

  it("refuses what it cannot scale out, at the script's line", function()
    k = cluster.start { "in:6" }
    local s = script(k, [[
sl.source.values { { user = "a" } }
  :sink(sl.sink.stdout())
]])
    local res = h.run("run " .. h.q(s) .. " --group g")
    h.expect_code(res, 2)
    h.contains(res.stderr, s .. ":2: --group: source.values is not a Kafka source")
    s = script(k, [[
sl.source.kafka { brokers = "BROKERS", topic = "in" }
  :timestamp("ts")
  :window_all(sl.tumbling "1s")
  :aggregate { n = sl.count() }
  :sink(sl.sink.stdout())
]])
    res = h.run("run " .. h.q(s) .. " --group g")
    h.expect_code(res, 2)
    h.contains(res.stderr, s .. ":4: --group: window is not keyed (key_by)")
    res = h.run("run " .. h.q(s) .. " --group g --state-dir /tmp/x")
    h.expect_code(res, 2)
    h.contains(res.stderr, "give --group or --state-dir, not both")
  end)
end)
