-- Options tables are checked: an unknown key is a mistake at the user's line, with the
-- nearest valid name suggested (report.lua: check_names, nearest), for every source, sink
-- and operator that takes a table of options.
local sl = require "sluice"
local graph = require "sluice.graph"
local report = require "sluice.report"

local here = debug.getinfo(1, "S").source:sub(2)

-- The message f raised (it must raise).
local function mistake(f)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected a mistake")
  return err
end

describe("options tables", function()
  before_each(function() graph.begin() end)

  it("source.file: an unknown option names the nearest valid one, at the user's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local err = mistake(function() sl.source.file { path = "x.json", fromat = "json" } end)
    assert.equal(here .. ":" .. line .. ": source.file(): unknown option fromat (did you mean format?)", err)
  end)

  it("reports every unknown option of a script being compiled, in a stable order", function()
    report.collect()
    sl.source.file { path = "x.json", fromat = "json", hedaer = true }
    local list = report.collected()
    assert.equal(2, #list)
    assert.truthy(list[1]:find("unknown option fromat (did you mean format?)", 1, true), list[1])
    assert.truthy(list[2]:find("unknown option hedaer (did you mean header?)", 1, true), list[2])
  end)

  it("without a near name, lists the options there are", function()
    local err = mistake(function() sl.source.generator { count = 1, speed = 5 } end)
    assert.truthy(err:find("source.generator(): unknown option speed (options: count, rate, fn)", 1, true), err)
    err = mistake(function() sl.source.generator { count = 1, "x" } end)
    assert.truthy(err:find("source.generator(): unknown option [1] (options: count, rate, fn)", 1, true), err)
    err = mistake(function() sl.sink.null { x = 1 } end)
    assert.truthy(err:find("sink.null(): unknown option x (it takes none)", 1, true), err)
  end)

  -- each: the call, its method, the unknown option and the name it suggests ("-": none)
  local values = sl.source.values
  local cases = {
    { function() sl.source.generator { rat = 1 } end, "source.generator()", "rat", "rate" },
    { function() sl.source.stdin { heder = true } end, "source.stdin()", "heder", "header" },
    { function() sl.source.tcp { listen = "127.0.0.1:1", fromat = "json" } end, "source.tcp()",
      "fromat", "format" },
    { function() sl.source.udp { listne = "127.0.0.1:1" } end, "source.udp()", "listne", "listen" },
    { function() sl.source.file { path = "x", folow = true } end, "source.file()", "folow", "follow" },
    { function() sl.source.file { path = "x", max_records = 10 } end, "source.file()", "max_records",
      "max_record" },
    { function() sl.source.nexmark { evnets = 10 } end, "source.nexmark()", "evnets", "events" },
    { function() sl.sink.stdout { fromat = "json" } end, "sink.stdout()", "fromat", "format" },
    { function() sl.sink.file { path = "x", apend = true } end, "sink.file()", "apend", "append" },
    { function() sl.sink.tcp { conect = "127.0.0.1:1" } end, "sink.tcp()", "conect", "connect" },
    { function() sl.sink.collect { keep = 1 } end, "sink.collect()", "keep", "-" },
    { function() values {}:timestamp("ts", { out_of_order = "1s" }) end, "timestamp()",
      "out_of_order", "out_of_orderness" },
    { function() values {}:timestamp("ts", { idel = "1s" }) end, "timestamp()", "idel", "idle" },
    { function()
      values {}:timestamp("ts"):key_by("k"):window(sl.tumbling "1s"):trigger { evry = "1s", every = "1s" }
    end, "trigger()", "evry", "every" },
    { function() values {}:key_by("k"):process { on_record = print, on_timr = print } end,
      "process()", "on_timr", "on_timer" },
  }
  for _, c in ipairs(cases) do
    local want = string.format("%s: unknown option %s", c[2], c[3])
    if c[4] ~= "-" then want = want .. string.format(" (did you mean %s?)", c[4]) end
    it(want, function()
      local err = mistake(c[1])
      assert.truthy(err:find(want, 1, true), err)
      assert.truthy(err:find(here .. ":%d+: "), err)
    end)
  end

  it("accepts every option a source or sink documents", function()
    sl.source.file { path = "x", format = "csv", header = true, follow = true, max_record = 10 }
    sl.source.stdin { format = "csv", header = true, max_record = 10 }
    sl.source.generator { count = 1, rate = 1, fn = print }
    sl.source.tcp { listen = "127.0.0.1:1", format = "json", header = false, max_record = 10 }
    sl.source.udp { listen = "127.0.0.1:1", format = "json", header = false, max_record = 10 }
    sl.sink.stdout { format = "csv", columns = { "a" } }
    sl.sink.file { path = "x", format = "csv", append = true, columns = { "a" } }
    sl.sink.tcp { connect = "127.0.0.1:1", format = "json", columns = { "a" }, high = 10 }
    sl.sink.null()
    sl.sink.collect()
    sl.source.values {}:timestamp("ts", { out_of_orderness = "1s", idle = "2s" })
      :key_by("k"):process { init = print, on_record = print, on_timer = print }
  end)

  it("nearest: at most 2 edits and fewer than half the name, a swap is one edit", function()
    local names = { "format", "header", "path" }
    assert.equal("format", report.nearest("fromat", names))
    assert.equal("format", report.nearest("Format", names))
    assert.equal("path", report.nearest("pth", names))
    assert.is_nil(report.nearest("x", names))
    assert.is_nil(report.nearest("colour", names))
    assert.equal("header", report.nearest("head", names))
    assert.equal(1, report.distance("ab", "ba"))
    assert.equal(3, report.distance("", "abc"))
  end)
end)
