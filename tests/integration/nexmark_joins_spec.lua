-- The Nexmark join queries (scripts/nexmark/q3, q4, q8, q9.lua) against their C baselines
-- (scripts/bench/nexmark/qN.c, the same generator linked in): on a few thousand events, at
-- the default rate and at another rate, seed and number of auctions in flight, each
-- script's results, made canonical by scripts/bench/nexmark/canon.lua, must be the lines
-- the baseline prints, as a multiset. `make bench` checks the same on more events.

local h = require "tests.helpers"

local QUERIES = { "q3", "q4", "q8", "q9" }

-- Each configuration, and the least number of results each query must give in it (so that
-- an empty result cannot pass).
local CONFIGS = {
  { events = 30000, seed = 0, rate = 10000, least = 60 },
  { events = 30000, seed = 9, rate = 2000, auctions = 300, least = 40 },
}

-- The baselines, built once into a directory of their own, which teardown removes.
local built
local function baseline(q)
  if not built then
    local mk = assert(io.popen("mktemp -d /tmp/sluice-nexmark.XXXXXX"))
    built = mk:read("*l")
    mk:close()
    assert(built and built ~= "", "mktemp -d failed")
    for _, name in ipairs(QUERIES) do
      local cmd = string.format("cc -O1 -std=c11 -D_GNU_SOURCE -DSL_NEXMARK_NO_LUA -Ihost " ..
        "-Iscripts/bench/nexmark -o %s scripts/bench/nexmark/%s.c host/nexmark.c host/claims.c " ..
        "-lm 2>&1",
        h.q(h.path(built, name)), name)
      local p = assert(io.popen(cmd))
      local msg = p:read("*a")
      local ok = p:close()
      assert(ok and h.exists(h.path(built, name)),
        "cannot build the " .. name .. " baseline: " .. cmd .. "\n" .. msg)
    end
  end
  return h.path(built, q)
end

local function sorted(lines)
  table.sort(lines)
  return lines
end

-- The baseline's results for config c, as sorted canonical lines.
local function expected(q, c)
  local cmd = string.format("%s -p %d %d %d %d", h.q(baseline(q)), c.events, c.seed, c.rate,
    c.auctions or 0)
  local p = assert(io.popen(cmd .. " 2>/dev/null"))
  local text = p:read("*a")
  assert(p:close(), cmd .. " failed")
  return sorted(h.lines(text))
end

-- The script's results for config c, as sorted canonical lines.
local function got(q, c)
  local dir = h.tmpdir()
  local out = h.path(dir, q .. ".jsonl")
  local env = { EVENTS = tostring(c.events), SEED = tostring(c.seed), RATE = tostring(c.rate),
    OUT = out }
  if c.auctions then env.AUCTIONS = tostring(c.auctions) end
  local res = h.run("run " .. h.q("scripts/nexmark/" .. q .. ".lua"), { env = env })
  h.expect_code(res, 0)
  local canon = h.run("run scripts/bench/nexmark/canon.lua", { env = { IN = out } })
  h.expect_code(canon, 0)
  return sorted(h.lines(canon.stdout))
end

describe("Nexmark join queries", function()
  after_each(h.cleanup)
  teardown(function()
    if built then os.execute("rm -rf " .. h.q(built)) end
    built = nil
  end)

  for _, q in ipairs(QUERIES) do
    for i, c in ipairs(CONFIGS) do
      it(string.format("%s gives its C baseline's results (%d events, rate %d%s)", q, c.events,
        c.rate, c.auctions and ", " .. c.auctions .. " auctions" or ""), function()
        local want = expected(q, c)
        assert.is_true(#want >= c.least, string.format("%s, config %d: only %d results", q, i,
          #want))
        assert.same(want, got(q, c))
      end)
    end
  end
end)
