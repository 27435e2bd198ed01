-- Specs for lua/sluice/help.lua: help(x) for every public name, by value and by name.
local sl = require "sluice"
local help = require "sluice.help"
local stream = require "sluice.stream"

describe("help", function()
  it("has an entry for every source, sink, function of sl and stream method", function()
    local missing = {}
    for _, part in ipairs({ "source", "sink" }) do
      for k in pairs(sl[part]) do
        if not help.entries["sl." .. part .. "." .. k] then missing[#missing + 1] = "sl." .. part .. "." .. k end
      end
    end
    for k, v in pairs(sl) do
      if type(v) == "function" and not help.entries["sl." .. k] then missing[#missing + 1] = "sl." .. k end
    end
    for k, v in pairs(stream.Stream) do
      if type(v) == "function" and not k:find("^_") and not help.entries["stream:" .. k] then
        missing[#missing + 1] = "stream:" .. k
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("finds a value's reference, and a name's", function()
    local text = help.fn(sl.source.file)
    assert.truthy(text:find("^sl%.source%.file {"), text)
    assert.truthy(text:find("follow=true", 1, true), text)
    assert.truthy(help.fn(sl.source.values { 1 }.window):find("^stream:window%("))
    assert.truthy(help.fn("window"):find("^stream:window%("))
    assert.truthy(help.fn("sl.tumbling"):find("^sl%.tumbling%(size%)"))
    assert.truthy(help.fn("job:tap"):find("sluice tap", 1, true))
    local both = help.fn("collect")
    assert.truthy(both:find("sl.collect(", 1, true) and both:find("stream:collect()", 1, true))
  end)

  it("lists every name without an argument, and says when it knows none", function()
    local text = help.fn()
    assert.equal(text, tostring(help.fn))
    assert.truthy(text:find("sl.source.generator", 1, true))
    assert.truthy(text:find("job:metrics", 1, true))
    for line in text:gmatch("[^\n]+") do assert.truthy(#line <= 88, line) end
    assert.equal('no help for "nope"; help() lists every name', help.fn("nope"))
    assert.truthy(help.fn("lateness"):find("^stream:allowed_lateness"))
  end)
end)
