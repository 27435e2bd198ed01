-- Key order (host/codec_keys.c): a decoded object remembers its keys' order, and every
-- encoder writes that order first, then any other keys sorted; a table built in Lua comes
-- out sorted. And JSON output is valid UTF-8: each ill-formed sequence becomes U+FFFD.
local sl = require "sluice"

local json, msgpack = sl.json, sl.msgpack

describe("key order", function()
  it("a decoded JSON object is encoded with its keys as they came, at every depth", function()
    local text = '{"z":1,"a":{"y":2,"b":[{"q":1,"p":2}]},"m":null,"k":"v"}'
    assert.equal(text, json.encode(json.decode(text)))
  end)

  it("decoded objects with the same keys in the same order share one shape", function()
    local a, b = json.decode('{"x":1,"y":2}'), json.decode('{"x":3,"y":4}')
    local c = json.decode('{"y":1,"x":2}')
    assert.is_not_nil(getmetatable(a))
    assert.equal(getmetatable(a), getmetatable(b))
    assert.are_not.equal(getmetatable(a), getmetatable(c))
    assert.equal('{"y":1,"x":2}', json.encode(c))
  end)

  it("a table built in Lua comes out sorted: numbers ascending, then strings bytewise", function()
    assert.equal('{"1.5":true,"3":4,"B":1,"a":2,"m":{"c":2,"k":1},"z":1}',
      json.encode({ z = 1, a = 2, B = 1, [3] = 4, [1.5] = true, m = { k = 1, c = 2 } }))
  end)

  it("keys a script adds come after the record's own, sorted; a removed key goes", function()
    local r = json.decode('{"ts":5,"price":10,"auction":7}')
    r.x = 1
    r.b = 2
    r.price = nil
    assert.equal('{"ts":5,"auction":7,"b":2,"x":1}', json.encode(r))
    r.price = 3             -- back again: in its place
    assert.equal('{"ts":5,"price":3,"auction":7,"b":2,"x":1}', json.encode(r))
  end)

  it("a record given many more keys than its shape has keeps every key, in order", function()
    -- 60 keys of its own and 400 a script adds: the entries number more than a signed
    -- char counts, wherever iteration puts the record's own keys among them.
    local own, added = {}, {}
    for i = 1, 60 do own[i] = string.format('"k%02d":%d', 61 - i, i) end
    local r = json.decode("{" .. table.concat(own, ",") .. "}")
    for i = 1, 400 do
      local key = string.format("x%03d", i)
      r[key] = i
      added[i] = string.format('"%s":%d', key, i)
    end
    local want = "{" .. table.concat(own, ",") .. "," .. table.concat(added, ",") .. "}"
    assert.equal(want, json.encode(r))
    assert.equal(want, json.encode(msgpack.decode(msgpack.encode(r))))
  end)

  it("a key repeated in the input keeps its first place and its last value", function()
    assert.equal('{"a":3,"b":2}', json.encode(json.decode('{"a":1,"b":2,"a":3}')))
  end)

  it("holds through msgpack, both ways", function()
    local text = '{"zeta":1,"alpha":{"k2":[1,2],"k1":"x"},"mid":true}'
    local packed = msgpack.encode(json.decode(text))
    assert.equal(text, json.encode(msgpack.decode(packed)))
    assert.equal(packed, msgpack.encode(msgpack.decode(packed)))
  end)

  it("map(function(r) r.x = 1; return r end) keeps the input's order plus x", function()
    local out = sl.sink.collect()
    sl.source.values { json.decode('{"c":1,"a":2}'), json.decode('{"c":3,"a":4}') }
      :map(function(r) r.x = 1; return r end)
      :sink(out)
    local graph = require "sluice.graph"
    assert(require("sluice.runtime").run(graph.ancestors({ out.node })))
    assert.equal('{"c":1,"a":2,"x":1}', json.encode(out:records()[1]))
    assert.equal('{"c":3,"a":4,"x":1}', json.encode(out:records()[2]))
  end)

  it("gives the same bytes for many records of many shapes", function()
    local shapes = { '{"a":%d,"b":2}', '{"b":%d,"a":2}', '{"q":{"r":%d,"p":[1,{"y":1,"x":2}]}}' }
    for i = 1, 300 do
      local text = string.format(shapes[i % 3 + 1], i)
      assert.equal(text, json.encode(json.decode(text)))
    end
  end)
end)

describe("JSON output is valid UTF-8", function()
  local R = "\239\191\189"          -- U+FFFD, the replacement character

  it("keeps well-formed UTF-8 as it is", function()
    assert.equal('"h\195\169llo \240\159\152\128"', json.encode("h\195\169llo \240\159\152\128"))
  end)

  it("writes each ill-formed sequence as one U+FFFD", function()
    assert.equal('"bad' .. R .. 'x"', json.encode("bad\255x"))
    assert.equal('"' .. R .. 'a"', json.encode("\224\160a"))              -- cut short
    assert.equal('"' .. R .. R .. '"', json.encode("\192\175"))           -- overlong
    assert.equal('"' .. R .. R .. R .. '"', json.encode("\237\160\128"))  -- a surrogate
    assert.equal('{"k' .. R .. '":"v' .. R .. '"}', json.encode({ ["k\255"] = "v\128" }))
  end)

  it("decodes invalid UTF-8 as it is: strings keep their bytes", function()
    assert.equal("a\255b", json.decode('"a\255b"'))
  end)
end)
