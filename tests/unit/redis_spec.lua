-- lua/sluice/redis.lua without a server: the URL and the options of sl.source.redis and
-- sl.sink.redis (the connector itself runs against redis-server in
-- tests/integration/redis_spec.lua).
local redis = require "sluice.redis"

describe("redis.parse_url", function()
  it("takes host, port, database, user and password, and shows the URL without them", function()
    assert.same({ host = "127.0.0.1", port = 6379, db = 0, shown = "redis://127.0.0.1" },
      redis.parse_url("redis://127.0.0.1"))
    assert.same({ host = "cache", port = 7000, db = 4, password = "pw",
      shown = "redis://cache:7000/4" }, redis.parse_url("redis://:pw@cache:7000/4"))
    assert.same({ host = "cache", port = 6379, db = 0, user = "app", password = "p:w",
      shown = "redis://cache" }, redis.parse_url("redis://app:p:w@cache"))
    assert.same({ host = "::1", port = 6380, db = 0, shown = "redis://[::1]:6380" },
      redis.parse_url("redis://[::1]:6380"))
  end)

  it("says what is wrong with a URL it cannot use", function()
    local function why(u) return select(2, redis.parse_url(u)) end
    assert.equal('url "http://h" does not start with redis://', why("http://h"))
    assert.equal('url "redis://:6379" has no host', why("redis://:6379"))
    assert.equal('url "redis://h:70000": port out of range', why("redis://h:70000"))
    assert.equal('url "redis://h/x": the database after / must be a number', why("redis://h/x"))
    assert.equal("url is required (redis://host:port[/db])", why(nil))
  end)
end)

describe("redis.bad_position", function()
  it("takes the count of entries a checkpoint covered", function()
    assert.is_nil(redis.bad_position(0))
    assert.is_nil(redis.bad_position(1024))
    assert.truthy(redis.bad_position(-1))
    assert.truthy(redis.bad_position("12"))
    assert.truthy(redis.bad_position(1.5))
  end)
end)
