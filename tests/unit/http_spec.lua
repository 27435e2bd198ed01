-- lua/sluice/http.lua's declarations: the HTTP source's options, their defaults, and each
-- mistake reported at the user's line (the running source is tests/integration's).
local sl = require "sluice"
local graph = require "sluice.graph"
local report = require "sluice.report"
local http = require "sluice.http"

local here = debug.getinfo(1, "S").source:sub(2)

describe("http.source_spec", function()
  before_each(function() graph.begin() end)

  it("fills in path, format and max_body", function()
    local spec = http.source_spec { listen = "127.0.0.1:8080" }
    assert.are.same({ type = "http", listen = "127.0.0.1:8080", url_path = "/", format = "json",
      max_body = 16 * 1024 * 1024, label = "source.http 127.0.0.1:8080/" }, spec)
    spec = http.source_spec { listen = "[::1]:80", path = "/in", format = "lines", max_body = 10 }
    assert.are.same({ "[::1]:80", "/in", "lines", 10 },
      { spec.listen, spec.url_path, spec.format, spec.max_body })
  end)

  it("reports each mistake at the user's line", function()
    report.collect()
    local line = debug.getinfo(1, "l").currentline + 1
    sl.source.http { lisen = "x", format = "xml", max_body = 1.5, path = "in" }
    local list = report.collected()
    local at = here .. ":" .. line .. ": source.http(): "
    assert.are.same({
      at .. "unknown option lisen (did you mean listen?)",
      at .. 'listen is required (a string "host:port"), got nil',
      at .. 'path must be a string starting with "/" (no spaces, "?" or "#"), got in',
      at .. 'unknown format "xml" (lines, json, csv, msgpack)',
      at .. "max_body must be a whole number of bytes from 1 to 2^30, got 1.5",
    }, list)
  end)

  it("wants a port in listen and a path without a query", function()
    report.collect()
    sl.source.http { listen = "localhost" }
    sl.source.http { listen = "localhost:1", path = "/a?b" }
    local list = report.collected()
    assert.are.equal(2, #list)
    assert.truthy(list[1]:find('listen is required (a string "host:port"), got localhost', 1, true))
    assert.truthy(list[2]:find('path must be a string starting with "/"', 1, true))
  end)
end)
