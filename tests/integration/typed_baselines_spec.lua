-- The C baselines of the typed-records benchmark (scripts/bench/typed/NAME.c) against the
-- sluice jobs beside them (NAME.lua): on the benchmark's bids (scripts/bench/typed/gen.lua,
-- a few thousand of each format) and on hand-made JSON lines that stray from the generator's
-- (keys in other orders, fields the jobs do not read, escapes, nested values, spaces,
-- numbers of 17 digits and with exponents, missing fields, a late bid), each baseline's
-- output must be sluice's, without a schema and with one (NAME_schema.lua): the same bytes,
-- or for the keyed window the same lines sorted.
-- `make bench` (scripts/bench/typed.sh) checks the same on millions of bids; this keeps the
-- yardstick honest between benchmark runs.

local h = require "tests.helpers"

local N = 20000
-- The generator's price is (i * 37 % 20000) / 100: over i = 1..N, i * 37 % 20000 takes each
-- value of 0..19999 once, so 9999 bids are over 100.
local KEPT = 9999

-- The baselines, built once into a directory of their own, which teardown removes.
local built
local function baseline(name)
  if not built then
    local mk = assert(io.popen("mktemp -d /tmp/sluice-typed.XXXXXX"))
    built = mk:read("*l")
    mk:close()
    assert(built and built ~= "", "mktemp -d failed")
  end
  local bin = h.path(built, name)
  if not h.exists(bin) then
    local cmd = string.format("cc -O1 -Wall -std=c11 -D_GNU_SOURCE -o %s " ..
      "scripts/bench/typed/%s.c -lm 2>&1", h.q(bin), name)
    local p = assert(io.popen(cmd))
    local msg = p:read("*a")
    local ok = p:close()
    assert(ok and h.exists(bin), "cannot build the " .. name .. " baseline: " .. cmd .. "\n" .. msg)
  end
  return bin
end

-- N bids in format f, written by the benchmark's generator.
local function bids(f)
  local path = h.path(h.tmpdir(), "bids." .. f)
  h.expect_code(h.run("run scripts/bench/typed/gen.lua",
    { env = { N = tostring(N), FORMAT = f, OUT = path } }), 0)
  return path
end

-- The output of job on input in: {c = C's bytes, sluice = sluice's bytes, schema = the
-- bytes of the job with sl.schema (NAME_schema.lua), counts = what C printed on stderr,
-- and the two sluice runs' stderr}.
local function outputs(job, input)
  local dir = h.tmpdir()
  local out_c, out_s = h.path(dir, "c.out"), h.path(dir, "sluice.out")
  local cmd = string.format("%s %s %s 2>%s", h.q(baseline(job)), h.q(input), h.q(out_c),
    h.q(h.path(dir, "counts")))
  local rc = os.execute(cmd)
  assert(rc == 0 or rc == true, cmd .. " failed")
  local res = h.run("run " .. h.q("scripts/bench/typed/" .. job .. ".lua"),
    { env = { IN = input, OUT = out_s } })
  h.expect_code(res, 0)
  local out_t = h.path(dir, "schema.out")
  local typed = h.run("run " .. h.q("scripts/bench/typed/" .. job .. "_schema.lua"),
    { env = { IN = input, OUT = out_t } })
  h.expect_code(typed, 0)
  return { c = h.read(out_c) or "", sluice = h.read(out_s) or "", schema = h.read(out_t) or "",
           counts = (h.read(h.path(dir, "counts")) or ""):gsub("\n$", ""), stderr = res.stderr,
           schema_stderr = typed.stderr }
end

local function sorted_lines(s)
  local t = h.lines(s)
  table.sort(t)
  return t
end

-- Hand-made JSON bids: for each i, a bid written as the generator never writes one.
local function odd_bids(n)
  local lines = {}
  local channels = { "web", "i\\\"os", "an,droid", "p\\u00e4rtner" }
  for i = 1, n do
    local price = 60 + (i * 0.7919191919191) % 90         -- 17-digit prices, half over 100
    local ts = 1700000000000 + i * 7
    local k = i % 6
    local line
    if k == 0 then
      line = string.format('{"ts":%d,"price":%.17g,"auction":%d,"bidder":%d,"channel":"%s"}',
        ts, price, 1000 + i % 37, i, channels[i % 4 + 1])
    elseif k == 1 then
      line = string.format('{ "auction" : %d , "extra" : {"a":[1,"x\\"}]",{"b":null}]} , ' ..
        '"price" : %.17g , "ts" : %d }', 1000 + i % 37, price, ts)
    elseif k == 2 then
      line = string.format('{"auction":%d,"price":%.6e,"ts":%d,"ok":true,"n":-1.5e-3}',
        1000 + i % 37, price, ts)
    elseif k == 3 then
      line = string.format('{"price":%.17g,"auction":%d,"ts":%d,"tags":["a","b\\\\"]}',
        price, 1000 + i % 37, ts)
    elseif k == 4 then
      line = string.format('{"auction":%d,"price":%d,"ts":%d}', 1000 + i % 37,
        math.floor(price), ts)
    else
      line = string.format('{"auction":%d,"price":-%.17g,"ts":%d,"channel":""}',
        1000 + i % 37, price, ts)
    end
    lines[#lines + 1] = line
  end
  return table.concat(lines, "\n") .. "\n"
end

describe("typed-records benchmark baselines", function()
  after_each(h.cleanup)
  teardown(function()
    if built then os.execute("rm -rf " .. h.q(built)) end
    built = nil
  end)

  it("json_filter_map.c writes sluice's bytes for the generated bids", function()
    local o = outputs("json_filter_map", bids("json"))
    assert.equals(string.format("%d %d 0", N, KEPT), o.counts)
    assert.equals(KEPT, #h.lines(o.c))
    assert.equals(o.sluice, o.c)
    assert.equals(o.schema, o.c)
  end)

  it("json_filter_map.c writes sluice's bytes for JSON it was not written against", function()
    local dir = h.tmpdir()
    local input = h.write(h.path(dir, "odd.jsonl"), odd_bids(3000) ..
      '{"price":150.5,"ts":1700000099999}\n' ..          -- no auction: left out, as nil
      '{"auction":7,"price":125,"bidder":1}\n' ..        -- no ts
      '{"auction":8,"price":"cheap","ts":1}\n' ..        -- not a number: dead-lettered
      '{"auction":9,"ts":1}\n')                          -- no price: dead-lettered
    local o = outputs("json_filter_map", input)
    assert.equals("3004 1368 2", o.counts)              -- lines, kept, bad
    assert.equals(1368, #h.lines(o.sluice))
    assert.equals(o.sluice, o.c)
    assert.equals(o.schema, o.c)
    h.contains(o.c, '{"eur":138.46,"ts":1700000099999}', "C output")
    h.contains(o.c, '{"auction":7,"eur":115}', "C output")
    -- the two records C counts as bad are sluice's two dead letters
    h.contains(o.stderr, "attempt to compare number with string", "sluice's dead letters")
    h.contains(o.stderr, "attempt to compare number with nil", "sluice's dead letters")
    h.contains(o.stderr, "sluice: 2 records dead-lettered", "sluice's stderr")
    -- with the schema, the string price is refused by the decoder, naming the field
    h.contains(o.schema_stderr, '"reason":"field price: want f64, got string"',
      "the schema job's dead letters")
    h.contains(o.schema_stderr, "attempt to compare number with nil",
      "the schema job's dead letters")
    h.contains(o.schema_stderr, "sluice: 2 records dead-lettered", "the schema job's stderr")
  end)

  it("csv_filter.c writes sluice's bytes, header first", function()
    local o = outputs("csv_filter", bids("csv"))
    assert.equals(string.format("%d %d 0", N, KEPT), o.counts)
    assert.equals("auction,bidder,channel,price,ts", h.lines(o.c)[1])
    assert.equals(KEPT + 1, #h.lines(o.c))
    assert.equals(o.sluice, o.c)
    assert.equals(o.schema, o.c)
  end)

  it("msgpack_window.c writes sluice's windows, totals to the last bit", function()
    local o = outputs("msgpack_window", bids("msgpack"))
    -- ts = 1700000000000 + 3 i: 61 windows of 1 s, the first and last partly filled
    assert.equals(string.format("%d 61 0 0", N), o.counts)
    assert.equals(61, #h.lines(o.c))
    assert.equals(o.sluice, o.c)
    assert.equals(o.schema, o.c)
    assert.equals('{"bids":333,"total":20576.07,"window_end":1700000001000,' ..
      '"window_start":1700000000000}', h.lines(o.c)[1])
  end)

  it("json_keyed_window.c writes sluice's results per auction and window", function()
    local o = outputs("json_keyed_window", bids("json"))
    assert.equals(string.format("%d 61 %d 0 0", N, N), o.counts)
    h.same_lines(sorted_lines(o.sluice), sorted_lines(o.c), "keyed window results")
    h.same_lines(sorted_lines(o.schema), sorted_lines(o.c), "keyed window results, schema")
  end)

  it("json_keyed_window.c drops a late bid and sums many per key as sluice does", function()
    local dir = h.tmpdir()
    -- 37 auctions, a bid every 7 ms up to ts ...021000: about 143 bids a window over 37
    -- keys; then a bid of the first window (late: dropped), one that moves the watermark
    -- on within the last window, and one behind it in that window (not late: counted).
    local odd = odd_bids(3000):gsub('"price":%-', '"price":')
    local input = h.write(h.path(dir, "odd.jsonl"), odd ..
      '{"auction":1000,"price":5,"ts":1700000000500}\n' ..
      '{"auction":1000,"price":6,"ts":1700000021990}\n' ..
      '{"auction":1000,"price":7,"ts":1700000021500}\n')
    local o = outputs("json_keyed_window", input)
    assert.equals("3003 22 779 1 0", o.counts)      -- lines, windows, results, late, bad
    h.same_lines(sorted_lines(o.sluice), sorted_lines(o.c), "keyed window results")
    h.same_lines(sorted_lines(o.schema), sorted_lines(o.c), "keyed window results, schema")
  end)
end)
