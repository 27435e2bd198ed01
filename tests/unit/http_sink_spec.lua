-- sl.sink.http's declaration (http_sink.lua's sink_spec): its defaults, the request
-- headers it makes, and a mistake in any option said at the user's line.
local sl = require "sluice"
local graph = require "sluice.graph"
local report = require "sluice.report"

local here = debug.getinfo(1, "S").source:sub(2)

-- The mistakes a declaration reports (collected, as while a script compiles).
local function mistakes(f)
  report.collect()
  f()
  return report.collected()
end

describe("sink.http declarations", function()
  before_each(function() graph.begin() end)

  it("takes url and defaults the rest as the contract says", function()
    local s = sl.sink.http { url = "http://127.0.0.1:8080/in" }
    assert.are.equal("http", s.type)
    assert.are.equal("POST", s.method)
    assert.are.equal("json", s.format)
    assert.are.equal(500, s.batch)
    assert.are.equal(1000, s.every)
    assert.are.equal(30000, s.timeout)
    assert.are.equal(1, s.parallel)
    assert.are.equal(4 * 1024 * 1024, s.high)
    assert.is_false(s.insecure)
    assert.are.equal("sink.http http://127.0.0.1:8080/in", s.label)
    assert.are.same({ "Content-Type: application/x-ndjson", "Expect:" }, s.headers)
  end)

  it("makes the request headers: the user's sorted, a Content-Type of theirs replacing the format's", function()
    local s = sl.sink.http { url = "https://x/", format = "lines", method = "put",
      headers = { ["X-B"] = 2, Authorization = "Bearer t" }, every = "250ms" }
    assert.are.equal("PUT", s.method)
    assert.are.equal(250, s.every)
    assert.are.same({ "Authorization: Bearer t", "X-B: 2", "Content-Type: text/plain; charset=utf-8",
      "Expect:" }, s.headers)
    s = sl.sink.http { url = "https://x/", format = "msgpack",
      headers = { ["content-type"] = "application/x-msgpack" } }
    assert.are.same({ "content-type: application/x-msgpack", "Expect:" }, s.headers)
  end)

  it("says each mistake, at the user's line", function()
    local line = debug.getinfo(1, "l").currentline + 2
    local list = mistakes(function()
      sl.sink.http { url = "ftp://x", method = "GET", format = "csv", batch = 1.5, every = "soon",
        parallel = 0, high = -1, cacert = 1, headers = { ["Bad:Name"] = "v", Ok = "a\nb" } }
    end)
    local want = {
      'url is required (a string "http://host:port/path" or "https://..."), got ftp://x',
      "method must be POST, PUT or PATCH, got GET",
      'unknown format "csv" (json, lines, msgpack)',
      "cacert must be the path of a PEM file of CA certificates, got 1",
      "high must be a number of bytes >= 1, got -1",
      "batch must be a whole number of records >= 1, got 1.5",
      'every: bad duration "soon"',
      "headers: Bad:Name = v is not a header",
      "headers: Ok = a\nb is not a header",
      "parallel must be a whole number of requests >= 1, got 0",
    }
    local all = table.concat(list, "\n")
    for _, w in ipairs(want) do
      assert.truthy(all:find(here .. ":" .. line .. ": sink.http(): " .. w, 1, true),
        "missing: " .. w .. "\nin:\n" .. all)
    end
    assert.are.equal(#want, #list, all)
  end)

  it("names the nearest option for a misspelt one", function()
    local ok, err = pcall(function() sl.sink.http { url = "http://x/", bacth = 10 } end)
    assert.is_false(ok)
    assert.truthy(err:find("sink.http(): unknown option bacth (did you mean batch?)", 1, true), err)
  end)
end)
