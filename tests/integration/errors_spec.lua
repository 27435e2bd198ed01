-- Mistakes in scripts (tests/fixtures/*.lua): each is reported as `script.lua:LINE: message`
-- at the user's line, and `sluice check` and `sluice run` exit 2 before any record flows, so
-- the script's output file is never created.

local h = require "tests.helpers"

-- fixture, the line of its mistake, phrases the message must hold (on that line of stderr)
local cases = {
  { "syntax_error.lua",          4, { "unexpected symbol" } },
  { "map_not_function.lua",      6, { "map()", "function" } },
  { "reduce_not_keyed.lua",      6, { "not keyed", "key_by" } },
  { "window_not_keyed.lua",      6, { "not keyed", "key_by" } },
  { "aggregate_not_keyed.lua",   6, { "not keyed", "key_by" } },
  { "no_sink.lua",               5, { "no sink" } },
  { "bad_duration.lua",          6, { "10x" } },
  { "unknown_sink_format.lua",   7, { "yaml" } },
  { "unknown_source_format.lua", 5, { "toml" } },
  { "unknown_option.lua",        5, { "source.file(): unknown option fromat (did you mean format?)" } },
}

local function expect_located(res, path, line, phrases)
  local l = h.find_located(res.stderr, path, line)
  if not l then
    error(string.format("expected a message starting %s:%d: on stderr\n%s", path, line,
      h.describe(res)), 2)
  end
  for _, p in ipairs(phrases) do h.contains(l, p, "the message") end
end

describe("a script with a mistake", function()
  after_each(h.cleanup)

  for _, c in ipairs(cases) do
    local name, line, phrases = c[1], c[2], c[3]
    local path = "tests/fixtures/" .. name

    for _, cmd in ipairs { "check", "run" } do
      it(string.format("%s: sluice %s reports %s:%d and exits 2", name, cmd, name, line),
        function()
          local out = h.path(h.dir(), "out.jsonl")
          local res = h.run(cmd .. " " .. h.q(path), { env = { OUT = out } })
          h.expect_code(res, 2)
          expect_located(res, path, line, phrases)
          assert(not h.exists(out), "the output file was created: " .. out)
        end)
    end
  end

  it("two mistakes: sluice check reports both lines", function()
    local path = "tests/fixtures/two_mistakes.lua"
    local out = h.path(h.dir(), "out.jsonl")
    local res = h.run("check " .. h.q(path), { env = { OUT = out } })
    h.expect_code(res, 2)
    expect_located(res, path, 6, { "map()", "function" })
    expect_located(res, path, 10, { "filter" })
    assert(not h.exists(out), "the output file was created: " .. out)
  end)

  it("two mistakes: sluice run exits 2 with the first and writes nothing", function()
    local path = "tests/fixtures/two_mistakes.lua"
    local out = h.path(h.dir(), "out.jsonl")
    local res = h.run("run " .. h.q(path), { env = { OUT = out } })
    h.expect_code(res, 2)
    expect_located(res, path, 6, { "map()" })
    assert(not h.exists(out), "the output file was created: " .. out)
  end)
end)

describe("a correct script", function()
  after_each(h.cleanup)

  it("passes sluice check (exit 0) without running it", function()
    local out = h.path(h.dir(), "out.jsonl")
    local res = h.run("check tests/fixtures/valid.lua", { env = { OUT = out } })
    h.expect_code(res, 0)
    assert(not h.exists(out), "check ran the job: it created " .. out)
  end)

  it("runs the same fixture (the OUT convention works)", function()
    local out = h.path(h.dir(), "out.jsonl")
    local res = h.run("run tests/fixtures/valid.lua", { env = { OUT = out } })
    h.expect_code(res, 0)
    assert.are.same({ '{"x":1}', '{"x":2}', '{"x":3}' }, h.lines(h.read(out)))
  end)
end)
