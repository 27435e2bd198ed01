-- Typed records (sl.schema) give the same results as tables. Each job here runs twice on the
-- same input, once with its source's schema option and once without (the script reads
-- `--set typed=1`), at batch sizes 1, 7 and 1024, and the two outputs must be the same
-- records. They are compared decoded, as tables: a typed record is written with its fields
-- in the schema's order (sorted names), a table with its keys as its input had them, so the
-- bytes of a JSON line differ by key order alone (checked below). Then what typing changes
-- on purpose (unknown fields skipped, null absent, int64 beyond 2^53 exact), the records a
-- job keeps (reduce, process, collect: their table form, never a view), checkpoints with
-- kill -9, reload, and the mistakes: wrong types dead-lettered with the field named,
-- sl.schema misuse at the user's line, writing to a record, pairs() on one.

local h = require "tests.helpers"
local sl = require "sluice"

local deepcompare = require("luassert.util").deepcompare

local decode, encode = sl.json.decode, sl.json.encode

local BATCHES = { 1, 7, 1024 }

-- The schema of the bids of these specs, as Lua source for a script.
local BID_SCHEMA = [[sl.schema{ auction = "i64", bidder = "i64", price = "f64", ts = "i64",
  channel = "string", ok = "bool", user = sl.schema{ name = "string", age = "i64" } }]]

-- Writes a script whose body sees `sl`, `S` (the schema when run with --set typed=1, else
-- nil), `IN` and `DIR` (the directory of its outputs); returns its path.
local function job(dir, body, schema_src, input)
  return h.write(h.path(dir, "job.lua"), string.format([[
local sl = require "sluice"
local S = %s
if sl.param("typed", "0") ~= "1" then S = nil end
local IN, DIR = %q, %q
%s
]], schema_src or BID_SCHEMA, input or h.path(dir, "in.jsonl"), dir, body))
end

-- Runs script to its end with or without its schema at a batch size; returns the run.
local function run(script, typed, batch, more)
  local res = h.run(string.format("run %s --set typed=%d --batch-size %d %s", h.q(script),
    typed and 1 or 0, batch, more or ""))
  h.expect_code(res, 0)
  return res
end

-- The records of JSON lines text, decoded.
local function records(text)
  local t = {}
  for _, l in ipairs(h.lines(text)) do t[#t + 1] = decode(l) end
  return t
end

-- r as JSON with the keys of its tables sorted: the same text for equal records.
local function canonical(r)
  if type(r) ~= "table" then return encode(r) end
  if #r > 0 or next(r) == nil then
    local t = {}
    for i, v in ipairs(r) do t[i] = canonical(v) end
    return "[" .. table.concat(t, ",") .. "]"
  end
  local keys = {}
  for k in pairs(r) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = encode(k) .. ":" .. canonical(r[k]) end
  return "{" .. table.concat(keys, ",") .. "}"
end

-- Records sorted by their canonical text (for outputs whose order across keys the
-- contract leaves open: windows fire per key in an order of their own).
local function sorted(rs)
  local t = {}
  for i, r in ipairs(rs) do t[i] = r end
  table.sort(t, function(a, b) return canonical(a) < canonical(b) end)
  return t
end

-- Asserts that arrays of records want and got are the same, record by record, naming the
-- first that differs (both encoded, so with sorted keys when they are tables alike).
local function same_records(want, got, what)
  local function line(r) return r == nil and "(none)" or encode(r) end
  for i = 1, math.max(#want, #got) do
    if want[i] == nil or got[i] == nil or not deepcompare(want[i], got[i], true) then
      error(string.format("%s: %d records against %d; record %d differs:\n  want %s\n  got  %s",
        what, #want, #got, i, line(want[i]), line(got[i])), 2)
    end
  end
end

-- The records of msgpack bytes, read back by a sluice job (msgpack in, JSON out).
local function mp_records(dir, bytes)
  local path = h.write(h.path(dir, "back.mp"), bytes)
  local script = h.write(h.path(dir, "back.lua"), string.format([[
local sl = require "sluice"
sl.source.file{ path = %q, format = "msgpack" }:sink(sl.sink.stdout{ format = "json" })
]], path))
  local res = h.run("run " .. h.q(script))
  h.expect_code(res, 0)
  return records(res.stdout)
end

-- n bids, deterministic: every type of field, a nested record, fields left out now and
-- then, strings with escapes and non-ASCII letters, prices with fractions.
local NAMES = { "ann", "bo \"b\"", "cé", "d\\e", "e\tf", "日本", "" }
local function bids(n)
  local t = {}
  for i = 1, n do
    local b = { auction = i % 13, bidder = (i * 7) % 31, price = (i * 37 % 1000) / 10,
      ts = 1000000 + i * 137, ok = i % 3 == 0 }
    if i % 5 ~= 0 then b.channel = (i % 2 == 0) and "web" or "app\n" .. i end
    if i % 4 ~= 0 then b.user = { name = NAMES[i % #NAMES + 1], age = 20 + i % 50 } end
    if i % 11 == 0 then b.user = { age = i } end
    t[i] = b
  end
  return t
end

-- bids(n) as JSON lines.
local function bid_lines(n)
  local t = {}
  for i, b in ipairs(bids(n)) do t[i] = encode(b) end
  return table.concat(t, "\n") .. "\n"
end

-- Runs the job in dir with and without its schema at every batch size; asserts that each
-- output file named in `outs` holds the same records in all six runs, in the same order
-- when ordered[name] (else sorted first); returns the records of the table path at batch
-- size 1024 by output name.
local function same_everywhere(dir, script, outs, ordered, more)
  local base
  for _, b in ipairs({ 1024, 1, 7 }) do
    for _, typed in ipairs({ false, true }) do
      run(script, typed, b, more)
      local got = {}
      for _, name in ipairs(outs) do
        got[name] = records(h.read(h.path(dir, name .. ".jsonl")) or "")
        if not ordered[name] then got[name] = sorted(got[name]) end
        os.remove(h.path(dir, name .. ".jsonl"))
      end
      if not base then
        base = got
        for _, name in ipairs(outs) do
          assert(#base[name] > 0, name .. ": the table path wrote nothing")
        end
      else
        for _, name in ipairs(outs) do
          same_records(base[name], got[name], string.format("%s, %s, batch size %d", name,
            typed and "typed" or "tables", b))
        end
      end
    end
  end
  return base
end

describe("typed records (sl.schema) against tables", function()
  after_each(function() h.cleanup() end)

  describe("formats", function()
    it("JSON in, JSON, CSV, msgpack and lines out: the same records, keys in schema order", function()
      local dir = h.tmpdir()
      h.write(h.path(dir, "in.jsonl"), bid_lines(300))
      local script = job(dir, [[
local src = sl.source.file{ path = IN, format = "json", schema = S }
src:sink(sl.sink.file{ path = DIR .. "/out.json", format = "json" })
src:sink(sl.sink.file{ path = DIR .. "/out.lines", format = "lines" })
src:sink(sl.sink.file{ path = DIR .. "/out.mp", format = "msgpack" })
src:sink(sl.sink.file{ path = DIR .. "/out.csv", format = "csv",
  columns = { "auction", "bidder", "channel", "ok", "price", "ts", "user" } })
]])
      local outs = {}
      for _, typed in ipairs({ false, true }) do
        for _, b in ipairs(BATCHES) do
          run(script, typed, b)
          local o = {}
          for _, f in ipairs({ "json", "lines", "mp", "csv" }) do
            o[f] = h.read(h.path(dir, "out." .. f))
          end
          outs[#outs + 1] = o
        end
      end
      local want = bids(300)
      for i, o in ipairs(outs) do
        local what = string.format("run %d (%s, batch size %d)", i,
          i > 3 and "typed" or "tables", BATCHES[(i - 1) % 3 + 1])
        same_records(want, records(o.json), what .. ", json")
        same_records(want, records(o.lines), what .. ", lines")
        local mp = mp_records(dir, o.mp)
        same_records(want, mp, what .. ", msgpack")
        -- CSV with the columns named: the same bytes, a nested record as quoted JSON
        assert.are.equal(outs[1].csv, o.csv, what .. ", csv")
        -- JSON: the same bytes once a table's keys are in schema order; typed ones are
        if i > 3 then
          local lines = h.lines(o.json)
          for j, r in ipairs(want) do
            local keys = {}
            for k in lines[j]:gmatch('"([%a_]+)":') do
              if r[k] ~= nil then keys[#keys + 1] = k end
            end
            local in_order = { unpack(keys) }
            table.sort(in_order)
            assert.are.same(in_order, keys, "typed JSON keys in schema order: " .. lines[j])
          end
        end
      end
    end)

    it("JSON edge cases: escapes, unicode, numbers, absent, unknown and null fields, BOM, CRLF, " ..
        "blank and long lines", function()
      local dir = h.tmpdir()
      local long = string.rep("x", 4000 - 40)
      local input = "\239\187\191" .. table.concat({
        [[{"id":1,"name":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00 \u0000z","price":0.1,"ok":true}]],
        "",
        [[{"id":-7,"price":1e21,"ok":false,"junk":[1,{"x":[true,null,"}"]}],"more":"\""}]],
        "   ",
        [[{"id":2,"price":-0.0,"name":"","u":{"n":"x","age":30,"skip":{"deep":[1]}}}]],
        [[{"price":1e-7,"id":9007199254740991}]],
        [[{"price":123456789012345678,"id":-9007199254740991}]],
        [[{"price":0.30000000000000004,"id":3,"u":{}}]],
        [[{"price":5e-324,"id":4,"name":"long ]] .. long .. [["}]],
        [[{"price":1.7976931348623157e308,"id":1e3,"ok":true}]],
        [[{"id":5,"name":null,"u":null}]],
        [[ { "id" : 6 , "price" : 2E+2 } ]],
      }, "\r\n") .. "\r\n"
      h.write(h.path(dir, "in.jsonl"), input)
      local script = job(dir, [[
sl.source.file{ path = IN, format = "json", schema = S, max_record = 4000 }
  :map(function(r)
    -- what a function reads must be the same value: -0 stays -0, strings byte for byte
    -- (a table's null is sl.null, a typed record's nil: hence the type tests)
    local u = type(r.u) ~= "userdata" and r.u or nil
    return { r = r, neg_zero = r.price == 0 and 1 / r.price < 0 or nil,
      name_len = type(r.name) == "string" and #r.name or nil, age = u and u.age,
      n = u and u.n }
  end)
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", name = "string", price = "f64", ok = "bool",
  u = sl.schema{ n = "string", age = "i64" } }]])
      local null = sl.json.null
      local known = { id = true, name = true, price = true, ok = true, u = true }
      -- a table's record as typing sees it: unknown fields skipped, null absent
      local function as_typed(r)
        local t = {}
        for k, v in pairs(r) do
          if known[k] and v ~= null then t[k] = v end
        end
        if type(t.u) == "table" then t.u = { n = t.u.n, age = t.u.age } end
        return t
      end
      for _, b in ipairs(BATCHES) do
        run(script, false, b)
        local plain = records(h.read(h.path(dir, "out.jsonl")))
        run(script, true, b)
        local typed = records(h.read(h.path(dir, "out.jsonl")))
        assert.are.equal(10, #plain)
        for i, r in ipairs(plain) do r.r = as_typed(r.r); plain[i] = r end
        same_records(plain, typed, "batch size " .. b)
        assert.is_true(typed[3].neg_zero)
        assert.are.equal("a\"b\\c/d\n\t\195\169\240\159\152\128 \0z", typed[1].r.name)
        assert.are.equal(1e21, typed[2].r.price)
        assert.are.equal(4000 - 40 + 5, typed[7].name_len)
        assert.are.equal(1000, typed[8].r.id)
        assert.are.same({ id = 5 }, typed[9].r)
        assert.are.same({ id = 6, price = 200 }, typed[10].r)
      end
      -- one byte over max_record: dead-lettered on both paths, the rest flows
      h.write(h.path(dir, "in.jsonl"), '{"id":1}\n{"id":2,"name":"' .. string.rep("y", 4000) .. '"}\n{"id":3}\n')
      for _, typed in ipairs({ false, true }) do
        local res = run(script, typed, 7)
        assert.are.equal(2, #records(h.read(h.path(dir, "out.jsonl"))))
        h.contains(res.stderr, "1 record dead-lettered", "stderr")
      end
    end)

    it("escaped strings enough to fill the arena many times over: the same records, overlong ones dead", function()
      local dir = h.tmpdir()
      local lines = {}
      for i = 1, 3000 do
        lines[i] = string.format('{"id":%d,"s":"%s","t":"x\\ty%d"}', i,
          string.rep('\\u00e9\\n\\"', 50 + i % 400), i)
      end
      h.write(h.path(dir, "in.jsonl"), table.concat(lines, "\n") .. "\n")
      local script = job(dir, [[
sl.source.file{ path = IN, format = "json", schema = S, max_record = 3000 }
  :map(function(r) return { id = r.id, n = #r.s, s = r.s, t = r.t } end)
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", s = "string", t = "string" }]])
      local base
      for _, typed in ipairs({ false, true }) do
        for _, b in ipairs(BATCHES) do
          local res = run(script, typed, b)
          h.contains(res.stderr, "1071 records dead-lettered", "stderr")
          local got = h.read(h.path(dir, "out.jsonl"))
          if base then
            assert(got == base, string.format("%s, batch size %d: other bytes",
              typed and "typed" or "tables", b))
          else
            base = got
          end
        end
      end
      assert.are.equal(3000 - 1071, #h.lines(base))
    end)

    it("CSV in (header = true): by column, unknown columns skipped, a bool column as booleans", function()
      local dir = h.tmpdir()
      local rows = { "\239\187\191name,id,extra,price,ok,user" }
      local want = {}
      for i, b in ipairs(bids(200)) do
        local name = b.user and b.user.name
        local cell = name == nil and "" or '"' .. name:gsub('"', '""') .. '"'
        rows[#rows + 1] = string.format("%s,%d,x%d,%s,%s,", cell, b.auction * 1000 + i, i,
          sl.json.encode(b.price), i % 7 == 0 and "" or tostring(b.ok))
        want[i] = { name = name, id = b.auction * 1000 + i, price = b.price }
        if i % 7 ~= 0 then want[i].ok = b.ok end
      end
      rows[#rows + 1] = '"multi\nline",1,,-0,true,'
      want[#want + 1] = { name = "multi\nline", id = 1, price = 0, ok = true }
      h.write(h.path(dir, "in.csv"), table.concat(rows, "\r\n") .. "\r\n")
      local script = job(dir, [[
sl.source.file{ path = IN, format = "csv", header = true, schema = S }
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", name = "string", price = "f64", ok = "bool" }]],
        h.path(dir, "in.csv"))
      for _, b in ipairs(BATCHES) do
        run(script, false, b)
        local plain = records(h.read(h.path(dir, "out.jsonl")))
        run(script, true, b)
        local typed = records(h.read(h.path(dir, "out.jsonl")))
        same_records(want, typed, "typed, batch size " .. b)
        -- the table path: every column, a bool column as the strings "true" and "false"
        for i, r in ipairs(plain) do
          assert.are.equal("x" .. i, i <= 200 and r.extra or "x" .. i)
          r.extra, r.user = nil, nil
          if r.ok ~= nil then r.ok = r.ok == "true" end
        end
        same_records(want, plain, "tables, batch size " .. b)
      end
    end)

    it("msgpack in: the same records by key, nested maps as nested records", function()
      local dir = h.tmpdir()
      h.write(h.path(dir, "in.jsonl"), bid_lines(300))
      local to_mp = h.write(h.path(dir, "to_mp.lua"), string.format([[
local sl = require "sluice"
sl.source.file{ path = %q, format = "json" }
  :map(function(r) r.skip = { 1, "two", { three = 3 } }; return r end)
  :sink(sl.sink.file{ path = %q, format = "msgpack" })
]], h.path(dir, "in.jsonl"), h.path(dir, "in.mp")))
      h.expect_code(h.run("run " .. h.q(to_mp)), 0)
      local script = job(dir, [[
sl.source.file{ path = IN, format = "msgpack", schema = S }
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], nil, h.path(dir, "in.mp"))
      local want = bids(300)
      for _, b in ipairs(BATCHES) do
        run(script, false, b)
        local plain = records(h.read(h.path(dir, "out.jsonl")))
        run(script, true, b)
        local typed = records(h.read(h.path(dir, "out.jsonl")))
        same_records(want, typed, "typed, batch size " .. b)
        for _, r in ipairs(plain) do
          assert.are.same({ 1, "two", { three = 3 } }, r.skip)
          r.skip = nil
        end
        same_records(want, plain, "tables, batch size " .. b)
      end
    end)
  end)

  describe("sources", function()
    -- Sends text to a typed (or not) tcp job in pieces of 1 to 97 bytes, records split
    -- anywhere, over two connections one after the other (JSON); returns a function that
    -- waits for n records and returns them.
    local function over_tcp(dir, fmt, text, typed, schema_src, header)
      local port = h.port()
      local script = job(dir, string.format([[
sl.source.tcp{ listen = "127.0.0.1:%d", format = %q, header = %s, schema = S }
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], port, fmt, tostring(header or false)), schema_src)
      os.remove(h.path(dir, "out.jsonl"))
      local running = h.background(script,
        string.format("--set typed=%d --batch-size 7", typed and 1 or 0))
      local half = math.floor(#text / 2)
      while half < #text and text:sub(half, half) ~= "\n" do half = half + 1 end
      -- (one connection for a CSV header and for msgpack, whose bytes have no line ends)
      local parts = (header or fmt == "msgpack") and { text }
        or { text:sub(1, half), text:sub(half + 1) }
      local sizes, k = { 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 97 }, 0
      for _, part in ipairs(parts) do
        local fd = h.dial(port)
        local at = 1
        while at <= #part do
          k = k + 1
          local n = sizes[k % #sizes + 1]
          h.send_all(fd, part:sub(at, at + n - 1))
          at = at + n
          if k % 50 == 0 then h.sleep_ms(1) end
        end
        require("ffi").C.close(fd)
      end
      return function(n)
        h.wait_lines(h.path(dir, "out.jsonl"), n)
        h.sleep_ms(100)
        running.signal("TERM")
        assert.are.equal(0, running.wait(), running.stderr())
        return records(h.read(h.path(dir, "out.jsonl")))
      end
    end

    it("tcp: JSON, CSV and msgpack records split anywhere give the same records", function()
      local dir = h.tmpdir()
      local text = bid_lines(400)
      local want = bids(400)
      for _, typed in ipairs({ false, true }) do
        same_records(want, over_tcp(dir, "json", text, typed)(400), "json over tcp")
      end
      -- msgpack: the same bids, made by a table-path job
      h.write(h.path(dir, "in.jsonl"), text)
      local to_mp = h.write(h.path(dir, "to_mp.lua"), string.format([[
local sl = require "sluice"
sl.source.file{ path = %q, format = "json" }:sink(sl.sink.file{ path = %q, format = "msgpack" })
]], h.path(dir, "in.jsonl"), h.path(dir, "in.mp")))
      h.expect_code(h.run("run " .. h.q(to_mp)), 0)
      local mp = h.read(h.path(dir, "in.mp"))
      for _, typed in ipairs({ false, true }) do
        local wait = over_tcp(dir, "msgpack", mp, typed)
        same_records(want, wait(400), "msgpack over tcp")
      end
      local rows = { "id,name,price" }
      local csv_want = {}
      for i, b in ipairs(want) do
        rows[#rows + 1] = string.format('%d,"%s",%s', i, (b.channel or ""):gsub('"', '""'),
          encode(b.price))
        csv_want[i] = { id = i, name = b.channel or "", price = b.price }
      end
      for _, typed in ipairs({ false, true }) do
        local wait = over_tcp(dir, "csv", table.concat(rows, "\n") .. "\n", typed,
          [[sl.schema{ id = "i64", name = "string", price = "f64" }]], true)
        same_records(csv_want, wait(400), "csv over tcp")
      end
    end)

    it("stdin: the same records", function()
      local dir = h.tmpdir()
      local input = h.write(h.path(dir, "in.jsonl"), bid_lines(500))
      local script = job(dir, [[
sl.source.stdin{ format = "json", schema = S }
  :filter(function(b) return b.ok end)
  :sink(sl.sink.stdout{ format = "json" })
]])
      local base
      for _, typed in ipairs({ false, true }) do
        for _, b in ipairs(BATCHES) do
          local res = h.run(string.format("run %s --set typed=%d --batch-size %d", h.q(script),
            typed and 1 or 0, b), { stdin = input })
          h.expect_code(res, 0)
          local got = records(res.stdout)
          if base then same_records(base, got, "stdin, batch size " .. b) else base = got end
        end
      end
      assert.are.equal(166, #base)
    end)
  end)

  describe("what a schema changes on purpose", function()
    it("unknown fields and nulls are not written, integers beyond 2^53 keep their digits, " ..
        "CSV bools are booleans", function()
      local dir = h.tmpdir()
      h.write(h.path(dir, "in.jsonl"), table.concat({
        '{"q":1,"id":9007199254740993,"z":null,"u":{"b":2,"a":1}}',
        '{"id":-9223372036854775808,"u":null}',
      }, "\n") .. "\n")
      local script = job(dir, [[
sl.source.file{ path = IN, format = "json", schema = S }
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", z = "string", u = sl.schema{ a = "i64", b = "i64" } }]])
      run(script, false, 7)
      assert.are.equal(table.concat({
        '{"q":1,"id":9007199254740992,"z":null,"u":{"b":2,"a":1}}',
        '{"id":-9223372036854775808,"u":null}',
      }, "\n") .. "\n", h.read(h.path(dir, "out.jsonl")))
      run(script, true, 7)
      assert.are.equal(table.concat({
        '{"id":9007199254740993,"u":{"a":1,"b":2}}',
        '{"id":-9223372036854775808}',
      }, "\n") .. "\n", h.read(h.path(dir, "out.jsonl")))
      -- an i64 has no negative zero: -0 is 0 to a typed record, -0 (a double) to a table
      h.write(h.path(dir, "zero.jsonl"), '{"id":-0}\n{"id":-0.0}\n')
      script = job(dir, [[
sl.source.file{ path = IN, format = "json", schema = S }
  :map(function(r) return { id = r.id, negative = 1 / r.id < 0 } end)
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64" }]], h.path(dir, "zero.jsonl"))
      run(script, false, 7)
      assert.are.same({ { id = 0, negative = true }, { id = 0, negative = true } },
        records(h.read(h.path(dir, "out.jsonl"))))
      run(script, true, 7)
      assert.are.same({ { id = 0, negative = false }, { id = 0, negative = false } },
        records(h.read(h.path(dir, "out.jsonl"))))
      -- CSV: a bool column is true/false to a typed record, the strings to a table
      h.write(h.path(dir, "in.csv"), "id,ok\n1,true\n2,false\n3,\n")
      script = job(dir, [[
sl.source.file{ path = IN, format = "csv", header = true, schema = S }
  :map(function(r) return { id = r.id, ok = type(r.ok) } end)
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", ok = "bool" }]], h.path(dir, "in.csv"))
      run(script, false, 7)
      assert.are.same({ { id = 1, ok = "string" }, { id = 2, ok = "string" }, { id = 3, ok = "nil" } },
        records(h.read(h.path(dir, "out.jsonl"))))
      run(script, true, 7)
      assert.are.same({ { id = 1, ok = "boolean" }, { id = 2, ok = "boolean" }, { id = 3, ok = "nil" } },
        records(h.read(h.path(dir, "out.jsonl"))))
    end)
  end)

  describe("operators", function()
    -- The job of these specs: one typed (or not) source of bids into every kind of
    -- operator, each to its own file. Functions return records themselves (r), keep them
    -- (reduce's accumulator, process state, apply's arrays, scan) or build new tables.
    local OPERATORS = [[
local src = sl.source.file{ path = IN, format = "json", schema = S }
  :timestamp("ts", { out_of_orderness = "2s" })
local function out(name) return sl.sink.file{ path = DIR .. "/" .. name .. ".jsonl", format = "json" } end
local function cheaper(a, b) if b.price < a.price then return b end return a end

src:filter(function(b) return b.price > 50 and b.ok end)
  :map(function(b) return { a = b.auction, p = b.price * 2, c = b.channel,
    n = b.user and b.user.name, age = b.user and b.user.age } end)
  :sink(out("map"))
src:filter(function(b) return b.auction == 3 end):sink(out("filter"))
src:flat_map(function(b)
  if b.auction % 4 == 0 then return { b, { a = b.auction, u = b.user } } end
  if b.auction % 4 == 1 then return { b } end
end):sink(out("flat_map"))
src:key_by("auction"):window(sl.tumbling "10s")
  :aggregate{ n = sl.count(), s = sl.sum "price", avg = sl.avg "price", lo = sl.min "price",
    hi = sl.max "price", d = sl.distinct "bidder", q = sl.quantile("price", 0.5) }
  :sink(out("tumbling"))
src:key_by("channel"):window(sl.sliding("20s", "5s"))
  :aggregate{ n = sl.count(), hi = sl.max "price", first = sl.first "bidder",
    last = sl.last(function(b) return b.user and b.user.name end), all = sl.collect "ok" }
  :sink(out("sliding"))
src:key_by("bidder"):window(sl.session "3s")
  :aggregate{ n = sl.count(), s = sl.sum "price" }
  :sink(out("session"))
src:key_by("auction"):window(sl.tumbling "10s")
  :reduce(cheaper)                         -- the accumulator is a record itself
  :sink(out("window_reduce"))
src:key_by("auction"):window(sl.tumbling "10s")
  :apply(function(k, w, rs) return { k = k, n = #rs, first = rs[1], last = rs[#rs] } end)
  :sink(out("apply"))
src:key_by("auction"):aggregate{ n = sl.count(), s = sl.sum "price", hi = sl.max "price" }
  :sink(out("rolling"))
src:key_by("auction"):reduce(cheaper):sink(out("rolling_reduce"))
src:key_by(function(b) return b.user and b.user.name or "-" end)
  :aggregate{ n = sl.count() }:sink(out("key_fn"))
src:dedupe(function(b) return b.bidder end, "5s"):sink(out("dedupe"))
src:changes(function(b) return b.ok end):sink(out("changes"))
src:scan(function(acc, b) return cheaper(acc, b) end, { price = math.huge }):sink(out("scan"))
src:key_by("auction")
  :lookup(sl.table.file{ path = DIR .. "/auctions.csv", format = "csv", header = true, key = "id" },
    function(b, row) return { b = b, seller = row and row.seller } end)
  :sink(out("lookup"))
src:key_by("auction"):process{
  on_record = function(ctx, b)
    local prev = ctx.state.prev           -- the record itself, kept in state
    ctx.state.prev = b
    if prev then ctx:emit({ prev = prev, cur = b }) end
    ctx:timer(b.ts + 5000)
  end,
  on_timer = function(ctx, t) ctx:emit({ key = ctx.key, t = t, prev = ctx.state.prev }) end,
}:sink(out("process"))
src:key_by("auction"):window(sl.tumbling "10s")
  :aggregate{ users = sl.collect(function(b) return b.user end), bids = sl.collect(function(b) return b end),
    top = sl.max(function(b) return b.user and b.user.age end) }
  :sink(out("collect_agg"))
local cheap, dear = src:partition(function(b) return b.price < 50 end)
cheap:union(dear:map(function(b) return { dear = b } end), sl.source.values{ { v = 1 }, { v = 2 } })
  :sink(out("union"))
src:filter(function(b) return b.bidder == 3 end):take(20):sink(out("take"))
src:batch(5, "1h"):map(function(rs) return { n = #rs, first = rs[1], last = rs[#rs] } end)
  :sink(out("batch"))
local peeked = {}
src:peek(function(b) peeked[#peeked + 1] = b.price end)
  :filter(function(b) return b.auction == 1 end)
  :map(function(b) return { b = b, seen = #peeked } end):sink(out("peek"))
local left = src:filter(function(b) return b.ok end):key_by("auction")
local right = src:filter(function(b) return not b.ok end):key_by("auction")
left:join(right):window(sl.tumbling "5s")
  :apply(function(l, r) if l.bidder < r.bidder then return { l = l, r = r } end end)
  :sink(out("join"))
]]
    local OUTS = { "map", "filter", "flat_map", "tumbling", "sliding", "session",
      "window_reduce", "apply", "rolling", "rolling_reduce", "key_fn", "dedupe", "changes",
      "scan", "lookup", "process", "join", "collect_agg", "union", "take", "batch", "peek" }
    -- the outputs of one record at a time, in input order (a key's records keep theirs)
    local ORDERED = { map = true, filter = true, flat_map = true, rolling = true,
      rolling_reduce = true, key_fn = true, dedupe = true, changes = true, scan = true,
      lookup = true, take = true, batch = true }

    it("every operator gives the same records, batch sizes 1, 7 and 1024, kept records whole", function()
      local dir = h.tmpdir()
      h.write(h.path(dir, "in.jsonl"), bid_lines(1500))
      local auctions = { "id,seller" }
      for i = 0, 12, 2 do auctions[#auctions + 1] = i .. ",s" .. i end
      h.write(h.path(dir, "auctions.csv"), table.concat(auctions, "\n") .. "\n")
      local script = job(dir, OPERATORS)
      local base = same_everywhere(dir, script, OUTS, ORDERED)
      -- on two workers, typed: the same records (each key's in its order; sorted here)
      run(script, true, 7, "--workers 2")
      for _, name in ipairs(OUTS) do
        local got = records(h.read(h.path(dir, name .. ".jsonl")) or "")
        same_records(sorted(base[name]), sorted(got), name .. ", typed on 2 workers")
      end
      -- the records kept are the records, not views of a reused buffer: each kept bid
      -- is one of the input's
      local input = {}
      for _, b in ipairs(bids(1500)) do input[encode(b)] = true end
      local function is_bid(b, what)
        assert(input[encode(b)], what .. ": not an input record: " .. encode(b))
      end
      for _, r in ipairs(base.window_reduce) do
        r.key, r.window_start, r.window_end = nil, nil, nil
        is_bid(r, "window reduce")
      end
      for _, r in ipairs(base.rolling_reduce) do is_bid(r, "rolling reduce") end
      for _, r in ipairs(base.process) do
        if r.cur then is_bid(r.prev, "process state"); is_bid(r.cur, "process") end
      end
      for _, r in ipairs(base.apply) do is_bid(r.first, "apply"); is_bid(r.last, "apply") end
      for _, r in ipairs(base.join) do is_bid(r.l, "join"); is_bid(r.r, "join") end
      for _, r in ipairs(base.collect_agg) do
        for _, b in ipairs(r.bids) do is_bid(b, "sl.collect") end
      end
      for _, r in ipairs(base.batch) do is_bid(r.first, "batch"); is_bid(r.last, "batch") end
      assert.are.equal(300, #base.batch)
    end)
  end)

  describe("records kept outside the graph", function()
    it("collect sinks and named operators (sl.testing.run) hold tables, the same both ways", function()
      local dir = h.tmpdir()
      h.write(h.path(dir, "in.jsonl"), bid_lines(200))
      local script = job(dir, [[
local src = sl.source.file{ path = IN, format = "json", schema = S }:timestamp("ts")
src:filter(function(b) return b.auction % 2 == 0 end):name("even")
  :sink(sl.sink.collect())
src:key_by("auction"):window(sl.tumbling "10s"):apply(function(k, w, rs) return rs end)
  :name("windowed"):sink(sl.sink.null())
]])
      local results = {}
      for _, typed in ipairs({ "0", "1" }) do
        for _, b in ipairs(BATCHES) do
          local out, dead = sl.testing.run(script, { params = { typed = typed }, batch_size = b })
          assert.are.same({}, dead)
          local r = {}
          for name, recs in pairs(out) do
            for _, rec in ipairs(recs) do
              assert.are.equal("table", type(rec), name .. ": a view outlived its batch")
            end
            r[name] = name == "windowed" and sorted(recs) or recs
          end
          results[#results + 1] = r
        end
      end
      local base = results[1]
      assert.are.equal(107, #base.even)               -- auctions 0, 2, ..., 12 of 0..12
      assert.are.equal(200, #base.windowed)
      same_records(sorted(bids(200)), base.windowed, "the windows' records")
      for i = 2, #results do
        for name, recs in pairs(base) do
          same_records(recs, results[i][name], string.format("%s, run %d", name, i))
        end
      end
    end)
  end)

  describe("taps", function()
    it("sluice tap shows a typed job's records as tables", function()
      local dir = h.tmpdir()
      local source = h.write(h.path(dir, "all.jsonl"), bid_lines(3000))
      local input, sock = h.path(dir, "in.jsonl"), h.path(dir, "job.sock")
      h.write(input, "")
      local script = job(dir, [[
sl.source.file{ path = IN, format = "json", schema = S, follow = true }
  :filter(function(b) return b.auction % 2 == 0 end):name("even")
  :sink(sl.sink.null())
]])
      local pidfile = h.path(dir, "pid")
      os.execute(string.format("(%s run %s --set typed=1 --control %s >/dev/null 2>%s " ..
        "</dev/null & echo $! >%s) &", h.q(h.bin()), h.q(script), h.q(sock),
        h.q(h.path(dir, "err")), h.q(pidfile)))
      h.wait_until("the job's socket", function()
        local c = require("sluice.host").core.ctl_connect(sock)
        if c then c:close() end
        return c ~= nil
      end)
      -- the input grows, a line every 2 ms, while the tap runs
      os.execute(string.format("(i=1; while [ $i -le 3000 ]; do sed -n \"${i}p\" %s >>%s; " ..
        "i=$((i+1)); sleep 0.002; done) >/dev/null 2>&1 & echo $! >%s", h.q(source), h.q(input),
        h.q(h.path(dir, "feeder"))))
      local out = h.path(dir, "tap.out")
      os.execute(string.format("timeout -k 5 --preserve-status -s INT 2 %s tap %s even " ..
        "--format json >%s 2>%s", h.q(h.bin()), h.q(sock), h.q(out), h.q(h.path(dir, "tap.err"))))
      os.execute("kill " .. h.read(h.path(dir, "feeder")):match("%d+") .. " 2>/dev/null")
      os.execute("kill " .. h.read(pidfile):match("%d+") .. " 2>/dev/null")
      local input_records = {}
      for _, b in ipairs(bids(3000)) do input_records[canonical(b)] = true end
      local tapped = records(h.read(out))
      assert.truthy(#tapped >= 10, "tapped " .. #tapped .. " records\n" ..
        (h.read(h.path(dir, "tap.err")) or ""))
      -- one operator tapped: its records as they are, each a whole input record
      for _, t in ipairs(tapped) do
        assert(input_records[canonical(t)], "not an input record: " .. encode(t))
        assert.are.equal(0, t.auction % 2)
      end
    end)
  end)

  describe("reduce accumulators that hold records", function()
    it("a new table holding the record (or a nested one) keeps it whole, rolling and windowed", function()
      local dir = h.tmpdir()
      h.write(h.path(dir, "in.jsonl"), bid_lines(3000))
      local script = job(dir, [[
local src = sl.source.file{ path = IN, format = "json", schema = S }:timestamp("ts")
src:key_by("auction")
  :reduce(function(acc, b) return { last = b, prev = acc.last or acc, u = b.user } end)
  :sink(sl.sink.file{ path = DIR .. "/rolling.jsonl", format = "json" })
src:key_by("auction"):window(sl.tumbling "10s")
  :reduce(function(acc, b) return { last = b, first = acc.first or acc, u = b.user } end)
  :sink(sl.sink.file{ path = DIR .. "/windowed.jsonl", format = "json" })
]])
      same_everywhere(dir, script, { "rolling", "windowed" }, { rolling = true })
    end)
  end)

  describe("checkpoints and reload", function()
    -- A job in the background (h.background): `sluice run script args`; kill(sig), wait()
    -- -> its exit status (nil after 30 s, the job killed), stderr(). The first argument,
    -- the job's directory, is not needed: the script names its files.
    local jobs = {}
    local function start(_, script, args)
      local j = h.background(script, args)
      j.kill = j.signal
      local wait = j.wait
      function j.wait()
        local rc = wait(30000)
        if rc == nil then j.kill("KILL") end
        return rc
      end
      jobs[#jobs + 1] = j
      return j
    end
    after_each(function()
      for _, j in ipairs(jobs) do if not j.ended() then j.kill("KILL") end end
      jobs = {}
    end)

    -- A keyed job: per auction a rolling count, sum and last bidder, and the cheapest bid
    -- so far (a reduce whose accumulator is a record: state that must be checkpointed as a
    -- table); follows its input when run with --set follow=1.
    local KEYED = [[
local follow = sl.param("follow", "0") == "1"
local src = sl.source.file{ path = IN, format = "json", schema = S, follow = follow }
src:key_by("auction"):aggregate{ n = sl.count(), s = sl.sum "price", last = sl.last "bidder" }
  :name("counts")
  :sink(sl.sink.file{ path = DIR .. "/counts.jsonl", format = "json" })
src:key_by("auction")
  :reduce(function(acc, b) if b.price < acc.price then return b end return acc end)
  :name("cheapest")
  :sink(sl.sink.file{ path = DIR .. "/cheapest.jsonl", format = "json" })
]]

    it("a typed job killed -9 again and again gives what one table-path run gives", function()
      local dir = h.tmpdir()
      local all = h.lines(bid_lines(6000))
      local input = h.path(dir, "in.jsonl")
      local script = job(dir, KEYED)
      -- the table path, uninterrupted, over the whole input
      h.write(input, table.concat(all, "\n") .. "\n")
      run(script, false, 1024)
      local want = { counts = h.lines(h.read(h.path(dir, "counts.jsonl"))),
        cheapest = h.lines(h.read(h.path(dir, "cheapest.jsonl"))) }
      assert.are.equal(6000, #want.counts)
      os.remove(h.path(dir, "counts.jsonl"))
      os.remove(h.path(dir, "cheapest.jsonl"))
      -- the typed path, followed, killed mid-way while its input grows
      h.write(input, "")
      local fed = 0
      local function feed(n)
        n = math.min(n, #all - fed)
        if n <= 0 then return end
        h.append(input, table.concat(all, "\n", fed + 1, fed + n) .. "\n")
        fed = fed + n
      end
      local seed = os.time()
      math.randomseed(seed)
      local args = "--set typed=1 --set follow=1 --state-dir " .. h.q(h.path(dir, "st")) ..
        " --checkpoint-every 30ms --batch-size " .. BATCHES[seed % 3 + 1]
      for round = 1, 6 do
        feed(math.random(300, 700))
        local j = start(dir, script, args)
        h.sleep_ms(math.random(50, 300))
        feed(math.random(100, 500))
        h.sleep_ms(math.random(0, 150))
        j.kill("KILL")
        assert(j.wait() == 137, string.format("round %d (seed %d): not ended by SIGKILL\n%s",
          round, seed, j.stderr()))
      end
      feed(#all)
      local j = start(dir, script, args)
      h.wait_lines(h.path(dir, "counts.jsonl"), 6000)
      h.wait_lines(h.path(dir, "cheapest.jsonl"), 6000)
      j.kill("TERM")
      assert.are.equal(0, j.wait(), j.stderr())
      -- the same records; typed ones with their keys in schema order
      for _, name in ipairs({ "counts", "cheapest" }) do
        local got = h.lines(h.read(h.path(dir, name .. ".jsonl")))
        local w, g = {}, {}
        for i = 1, #want[name] do w[i] = decode(want[name][i]) end
        for i = 1, #got do g[i] = decode(got[i]) end
        same_records(w, g, name .. " (seed " .. seed .. ")")
      end
    end)

    it("a typed job reloaded (SIGHUP, --watch) keeps its state, kept records included", function()
      local dir = h.tmpdir()
      local all = h.lines(bid_lines(900))
      local input = h.path(dir, "in.jsonl")
      local script = job(dir, KEYED)
      h.write(input, table.concat(all, "\n") .. "\n")
      run(script, false, 7)
      local want = {}
      for _, name in ipairs({ "counts", "cheapest" }) do
        want[name] = records(h.read(h.path(dir, name .. ".jsonl")))
        os.remove(h.path(dir, name .. ".jsonl"))
      end
      h.write(input, table.concat(all, "\n", 1, 300) .. "\n")
      local j = start(dir, script, "--set typed=1 --set follow=1 --watch --batch-size 7")
      h.wait_lines(h.path(dir, "counts.jsonl"), 300)
      -- a new version: the same operators, a comment more; by --watch
      h.write(script .. ".tmp", h.read(script) .. "-- version 2\n")
      assert(os.rename(script .. ".tmp", script))
      h.wait_until("the reload", function() return j.stderr():find("reloaded", 1, true) end)
      h.append(input, table.concat(all, "\n", 301, 600) .. "\n")
      h.wait_lines(h.path(dir, "counts.jsonl"), 600)
      j.kill("HUP")
      h.wait_until("the second reload", function()
        local _, n = j.stderr():gsub("reloaded", "")
        return n >= 2
      end)
      h.append(input, table.concat(all, "\n", 601, 900) .. "\n")
      h.wait_lines(h.path(dir, "counts.jsonl"), 900)
      h.wait_lines(h.path(dir, "cheapest.jsonl"), 900)
      j.kill("TERM")
      assert.are.equal(0, j.wait(), j.stderr())
      for _, name in ipairs({ "counts", "cheapest" }) do
        same_records(want[name], records(h.read(h.path(dir, name .. ".jsonl"))), name)
      end
    end)
  end)

  describe("mistakes", function()
    -- script lines after `local sl = require "sluice"` (line 1), the line of the mistake,
    -- and what its message must say
    local cases = {
      { 'local S = sl.schema{ id = "int" }', 2,
        'sl.schema(): field id: type must be "i64", "f64", "bool", "string" or sl.schema{...}, got "int"' },
      { 'local S = sl.schema{ id = "i64",\n  [1] = "string" }', 2,
        "sl.schema(): field names must be non-empty strings, got 1" },
      { 'local S = sl.schema{ [""] = "i64" }', 2,
        "sl.schema(): field names must be non-empty strings, got " },
      { 'local S = sl.schema{ id = "i64",\n  u = sl.schema{ age = 5 } }', 3,
        'sl.schema(): field age: type must be "i64", "f64", "bool", "string" or sl.schema{...}, got 5' },
      { 'local S = sl.schema "id"', 2,
        "sl.schema(): expected a table of field = type, got string" },
      { 'local S = sl.schema{ id = "i64" }\n\n' ..
        'sl.source.file{ path = "x", format = "lines", schema = S }:sink(sl.sink.null())', 4,
        "source.file(): schema needs format json, msgpack, or csv with header = true (got lines)" },
      { 'local S = sl.schema{ id = "i64" }\nsl.source.file{ path = "x", schema = S }:sink(sl.sink.null())', 3,
        "source.file(): schema needs format json, msgpack, or csv with header = true (got lines)" },
      { 'local S = sl.schema{ id = "i64" }\nsl.source.stdin{ format = "csv", schema = S }:sink(sl.sink.null())', 3,
        "source.stdin(): schema needs format json, msgpack, or csv with header = true (got csv without a header)" },
      { 'sl.source.tcp{ listen = "127.0.0.1:1", format = "json",\n  schema = { id = "i64" } }:sink(sl.sink.null())', 2,
        "source.tcp(): schema must be made by sl.schema{...}, got table" },
    }
    for i, c in ipairs(cases) do
      it(string.format("case %d: %s:%d and exit 2 (%s)", i, "job.lua", c[2], c[3]:sub(1, 40)), function()
        local path = h.script('local sl = require "sluice"\n' .. c[1] .. "\n", "job.lua")
        for _, cmd in ipairs({ "check", "run" }) do
          local res = h.run(cmd .. " " .. h.q(path))
          h.expect_code(res, 2)
          local l = h.find_located(res.stderr, path, c[2])
          assert(l, "no message at " .. path .. ":" .. c[2] .. "\n" .. h.describe(res))
          h.contains(l, c[3], "the message")
        end
      end)
    end

    -- A typed job whose dead letters go to dead.jsonl; returns its records and dead letters.
    local function dead_run(dir, body, schema_src, input, batch)
      local script = job(dir, [[
sl.dead_letter(sl.sink.file{ path = DIR .. "/dead.jsonl", format = "json" })
]] .. body, schema_src, input)
      local res = run(script, true, batch or 7)
      local out = records(h.read(h.path(dir, "out.jsonl")) or "")
      local dead = records(h.read(h.path(dir, "dead.jsonl")) or "")
      return out, dead, res
    end

    it("a value of the wrong type dead-letters its record naming the field, nested too; the others flow", function()
      local dir = h.tmpdir()
      local input = table.concat({
        '{"id":1,"u":{"age":30}}',
        '{"id":"2"}',
        '{"id":3,"u":{"age":"old"}}',
        '{"id":4,"u":{"age":1.5}}',
        '{"id":5,"u":7}',
        '{"id":6.5}',
        '{"id":1e19}',
        '{"id":7,"ok":"yes"}',
        '{"id":8,"name":12}',
        '{"id":9,"p":"1"}',
        '[1,2]',
        '{"id":10,"u":{"w":{"deep":"x"}}}',
        '{"id":11,"u":{"w":{"deep":1.5}}}',
        '{"id":12,"ok":true,"name":"n","p":-1.5e-3,"u":{"age":-4,"w":{"deep":2}}}',
        'not json',
      }, "\n") .. "\n"
      h.write(h.path(dir, "in.jsonl"), input)
      local out, dead, res = dead_run(dir, [[
sl.source.file{ path = IN, format = "json", schema = S }
  :map(function(r) return { id = r.id, kind = type(r) } end)
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", ok = "bool", name = "string", p = "f64",
  u = sl.schema{ age = "i64", w = sl.schema{ deep = "i64" } } }]])
      assert.are.same({ { id = 1, kind = "cdata" }, { id = 12, kind = "cdata" } }, out)
      local reasons = {}
      for i, d in ipairs(dead) do reasons[i] = d.reason end
      assert.are.same({
        'field id: want i64, got string',
        'field u.age: want i64, got string',
        'field u.age: want i64, got 1.5',
        'field u: want record, got 7',
        'field id: want i64, got 6.5',
        'field id: want i64, got 1e19',
        'field ok: want bool, got string',
        'field name: want string, got 12',
        'field p: want f64, got string',
        dead[10] and dead[10].reason,
        'field u.w.deep: want i64, got string',
        'field u.w.deep: want i64, got 1.5',
        'json: bad literal at byte 0 (expected null)',   -- as the table path says
      }, reasons)
      h.contains(dead[10].reason, "object", "a top-level array's reason")
      for _, d in ipairs(dead) do
        assert.are.equal(h.path(dir, "in.jsonl"), d.source)
        assert.truthy(d.line and d.offset and d.record)
      end
      h.contains(res.stderr, "13 records dead-lettered", "stderr")
    end)

    it("CSV and msgpack: a wrong value dead-letters its record naming the column", function()
      local dir = h.tmpdir()
      h.write(h.path(dir, "in.csv"), "id,ok,p\nabc,true,1\n2,yes,1\n3,true,x\n4,true,2\n5,true\n")
      local out, dead = dead_run(dir, [[
sl.source.file{ path = IN, format = "csv", header = true, schema = S }
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", ok = "bool", p = "f64" }]], h.path(dir, "in.csv"))
      assert.are.same({ { id = 4, ok = true, p = 2 } }, out)
      assert.are.same({ 'field id: want i64, got "abc"', 'field ok: want bool, got "yes"',
        'field p: want f64, got "x"' },
        { dead[1].reason, dead[2].reason, dead[3].reason })
      assert.are.equal(4, #dead)                      -- and the row of two columns
      assert.are.equal(6, dead[4].line)
      -- msgpack: made by a table-path job from JSON
      h.write(h.path(dir, "in.jsonl"), '{"id":1}\n{"id":"x"}\n{"id":2,"u":{"age":true}}\n{"id":3}\n')
      local to_mp = h.write(h.path(dir, "to_mp.lua"), string.format([[
local sl = require "sluice"
sl.source.file{ path = %q, format = "json" }:sink(sl.sink.file{ path = %q, format = "msgpack" })
]], h.path(dir, "in.jsonl"), h.path(dir, "in.mp")))
      h.expect_code(h.run("run " .. h.q(to_mp)), 0)
      os.remove(h.path(dir, "out.jsonl"))
      os.remove(h.path(dir, "dead.jsonl"))
      out, dead = dead_run(dir, [[
sl.source.file{ path = IN, format = "msgpack", schema = S }
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", u = sl.schema{ age = "i64" } }]], h.path(dir, "in.mp"))
      assert.are.same({ { id = 1 }, { id = 3 } }, out)
      assert.are.equal(2, #dead)
      h.contains(dead[1].reason, "field id: want i64", "msgpack reason")
      h.contains(dead[2].reason, "field u.age: want i64", "msgpack reason")
    end)

    it("setting a field raises at the user's line; pairs(), ipairs() and # say to use sl.plain", function()
      local dir = h.tmpdir()
      h.write(h.path(dir, "in.jsonl"), '{"id":1}\n{"id":2}\n{"id":3}\n{"id":4}\n{"id":5}\n{"id":6}\n')
      local out, dead, res = dead_run(dir, [[
sl.source.file{ path = IN, format = "json", schema = S }
  :map(function(r)
    if r.id == 2 then r.id = 20 end
    if r.id == 3 then for k in pairs(r) do print(k) end end
    if r.id == 4 then for k in ipairs(r) do print(k) end end
    if r.id == 5 then return { n = #r } end
    if r.id == 6 then local t = sl.plain(r); t.id = 60; t.n = 0; for _ in pairs(t) do t.n = t.n + 1 end; return t end
    return r
  end)
  :sink(sl.sink.file{ path = DIR .. "/out.jsonl", format = "json" })
]], [[sl.schema{ id = "i64", name = "string" }]])
      assert.are.same({ { id = 1 }, { id = 60, n = 2 } }, out)
      assert.are.equal(4, #dead)
      local script = h.path(dir, "job.lua")
      local want = {
        { 8, "a record of sl.schema is read-only (setting field id): return a new table, "
          .. "or sl.plain(r) to get one to change", 2 },
        { 9, "pairs() on a record of sl.schema: its fields are not a table; use "
          .. "pairs(sl.plain(r)) to walk its table form", 3 },
        { 10, "ipairs() on a record of sl.schema", 4 },
        { 11, "# on a record of sl.schema", 5 },
      }
      for i, w in ipairs(want) do
        local d = dead[i]
        h.contains(d.reason, script .. ":" .. w[1] .. ": " .. w[2], "dead letter " .. i)
        assert.are.equal("map", d.operator)
        assert.are.equal(script .. ":7", d.at)
        assert.are.same({ id = w[3] }, d.record)       -- the record, in its table form
      end
      h.contains(res.stderr, "4 records dead-lettered", "stderr")
    end)
  end)
end)
