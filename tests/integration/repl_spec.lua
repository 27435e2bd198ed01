-- sluice repl driven through a pipe: expressions print their values, errors print without
-- a traceback, chunks continue over lines, :show() prints a table, a script's top-level
-- streams are in scope; and the completion and printing the REPL is built on.

local h = require "tests.helpers"

-- Runs `sluice repl [script]` with `input` on stdin.
local function repl(input, script)
  local stdin = h.write(h.path(h.dir(), "input.txt"), input)
  return h.run("repl" .. (script and (" " .. h.q(script)) or ""), { stdin = stdin })
end

describe("sluice repl (piped)", function()
  after_each(h.cleanup)

  it("prints the value of an expression, with no prompt or escape code, and exits 0 at EOF",
    function()
      local res = repl("1 + 41\n'text'\n")
      h.expect_code(res, 0)
      assert.are.same({ "42", "text" }, h.lines(res.stdout))
      h.not_contains(res.stdout, "\27", "stdout")
      h.not_contains(res.stdout, "sl>", "stdout")
      assert.are.equal("", res.stderr)
    end)

  it("binds sl and pretty-prints tables, nested and with cycles", function()
    local res = repl("t = { a = { b = 1 }, list = { 1, 2, 3 } }\nt.self = t\nt\n" ..
      "sl.version ~= nil\n")
    h.expect_code(res, 0)
    h.contains(res.stdout, "a = { b = 1 }", "stdout")
    h.contains(res.stdout, "list = { 1, 2, 3 }", "stdout")
    h.contains(res.stdout, "self = <cycle>", "stdout")
    h.contains(res.stdout, "true", "stdout")
  end)

  it("abbreviates long arrays", function()
    local res = repl("local t = {} for i = 1, 500 do t[i] = i end return t\n")
    h.expect_code(res, 0)
    h.contains(res.stdout, "(480 more)", "stdout")
  end)

  it("prints a statement's output and nothing for its lack of values", function()
    local res = repl("x = 5\nprint('x is', x)\n")
    h.expect_code(res, 0)
    assert.are.same({ "x is\t5" }, h.lines(res.stdout))
  end)

  it("continues an incomplete chunk on the next lines", function()
    local res = repl("function f(a,\n  b)\n  return a * b\nend\nf(6,\n7)\n")
    h.expect_code(res, 0)
    assert.are.same({ "42" }, h.lines(res.stdout))
    assert.are.equal("", res.stderr)
  end)

  it("prints an error at the input's line, without a traceback, goes on, and exits 1", function()
    local res = repl("error('boom')\nnope()\n1 + 1\n")
    h.expect_code(res, 1)
    assert.are.same({ "stdin:1: boom", "stdin:1: attempt to call global 'nope' (a nil value)" },
      h.lines(res.stderr))
    assert.are.same({ "2" }, h.lines(res.stdout))
  end)

  it("reports a syntax error and a mistake in a stream at the input's line", function()
    local res = repl("1 +* 2\nsl.source.values { 1 }:map(42)\n")
    h.expect_code(res, 1)
    local lines = h.lines(res.stderr)
    assert.are.equal(2, #lines, res.stderr)
    h.contains(lines[1], "stdin:1:", "stderr")
    assert.are.equal("stdin:1: map(): expected a function, got number", lines[2])
    h.not_contains(res.stderr, "traceback", "stderr")
  end)

  it("prints a stream as a short description of its graph", function()
    local res = repl("sl.source.values { 1, 2 }:map(function(x) return x end)" ..
      ":filter(function() return true end):name('keep')\n")
    h.expect_code(res, 0)
    h.contains(res.stdout, 'source.values -> map -> filter "keep" (3 operators)', "stdout")
  end)

  it(":show(n) prints an aligned table with columns from the union of the keys", function()
    local res = repl("sl.source.values { { a = 1, b = 'x' }, { a = 22, c = true }, { a = 3 } }" ..
      ":show(2)\n")
    h.expect_code(res, 0)
    assert.are.same({ "a   b  c", "--  -  ----", "1   x", "22     true" }, h.lines(res.stdout))
  end)

  it(":show() abbreviates values to the terminal width ($COLUMNS)", function()
    local stdin = h.write(h.path(h.dir(), "input.txt"),
      "sl.source.values { { id = 1, text = string.rep('word ', 30) } }:show()\n")
    local res = h.run("repl", { stdin = stdin, env = { COLUMNS = "30" } })
    h.expect_code(res, 0)
    for _, line in ipairs(h.lines(res.stdout)) do
      assert.is_true(#line <= 30, line)
    end
    h.contains(res.stdout, "...", "stdout")
  end)

  it(":graph() prints the graph", function()
    local res = repl("sl.source.values { 1 }:map(function(x) return x end):name('double'):graph()\n")
    h.expect_code(res, 0)
    h.contains(res.stdout, "source.values", "stdout")
    h.contains(res.stdout, 'map "double"', "stdout")
  end)

  it("has the script's top-level streams in scope", function()
    local script = h.script([[
local sl = require "sluice"
local numbers = sl.source.values { 1, 2, 3 }
doubled = numbers:map(function(x) return x * 2 end)
doubled:sink(sl.sink.null())
]])
    local res = repl("numbers:collect()\ndoubled:collect()\n", script)
    h.expect_code(res, 0)
    assert.are.same({ "{ 1, 2, 3 }", "{ 2, 4, 6 }" }, h.lines(res.stdout))
  end)

  it("sums up a chunk's dead letters: the first with its traceback, then a count", function()
    local bad = h.write(h.path(h.dir(), "bad.jsonl"), 'bad\n{"x":1}\n{"x":2}\nworse\n')
    local res = repl(string.format("s = sl.source.file { path = %q, format = 'json' }\n" ..
      "s:show()\ns:show()\n" ..
      "function f(r)\n  return r.x.y + 1\nend\n" ..
      "sl.source.values { 1, 2, 3 }:map(function(r) local v = f({ x = r }); return v end):collect()\n",
      bad))
    h.expect_code(res, 0)
    assert.are.same({ "x", "-", "1", "2", "x", "-", "1", "2", "{}" }, h.lines(res.stdout))
    local summary = {
      "dead letter: json: unexpected character 'b' at byte 0",
      "  from " .. bad .. " line 1 (byte 0)",
      '  record: "bad"',
      "(and 1 more dead letter: 2 records in all; sl.dead_letter(sink) keeps every one)",
    }
    local want = {}
    for _ = 1, 2 do for _, l in ipairs(summary) do want[#want + 1] = l end end
    for _, l in ipairs({
      "dead letter: stdin:2: attempt to index field 'x' (a number value)",
      "  in map at stdin:1",
      "  record: 1",
      "  stack traceback:",
      "    stdin:2: in function 'f'",
      "    stdin:1: in the function given to map",
      "(and 2 more dead letters: 3 records in all; sl.dead_letter(sink) keeps every one)",
    }) do want[#want + 1] = l end
    assert.are.same(want, h.lines(res.stderr))
  end)

  it("help() lists the names and help(x) prints the reference of one", function()
    local res = repl("help()\nhelp(sl.source.file)\nhelp 'job:tap'\n")
    h.expect_code(res, 0)
    h.contains(res.stdout, "sources:   sl.source.file,", "stdout")
    h.contains(res.stdout, 'sl.source.file { path, format = "lines"', "stdout")
    h.contains(res.stdout, "job:tap(pattern, n = 10)", "stdout")
  end)

  it("reports a script that fails to load with status 2", function()
    local script = h.script("local sl = require 'sluice'\nerror('broken script')\n")
    local res = repl("1\n", script)
    h.expect_code(res, 2)
    h.contains(res.stderr, script .. ":2: broken script", "stderr")
  end)
end)

describe("repl.complete", function()
  local repl_mod = require "sluice.repl"
  local sl = require "sluice"
  local env = setmetatable({ sl = sl, s = sl.source.values { 1 } }, { __index = _G })

  it("completes sl. names", function()
    assert.are.same({ "sl.source" }, repl_mod.complete(env, "sl.sou"))
    local words = repl_mod.complete(env, "sl.source.")
    assert.truthy(#words >= 4)
    assert.truthy(table.concat(words, " "):find("sl.source.values", 1, true))
  end)

  it("completes stream methods, after a name or an expression", function()
    assert.are.same({ "s:map" }, repl_mod.complete(env, "s:ma"))
    local words = repl_mod.complete(env, ":fil")
    assert.are.same({ ":filter" }, words)
  end)

  it("completes globals and keywords, and nothing for unknown paths", function()
    assert.are.same({ "print" }, repl_mod.complete(env, "prin"))
    assert.are.same({ "function" }, repl_mod.complete(env, "functi"))
    assert.are.same({}, repl_mod.complete(env, "nosuch.thing"))
  end)
end)
