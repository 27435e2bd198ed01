-- Help for every command (`sluice COMMAND --help`, `sluice help COMMAND`), the man page and
-- the bash completion: each names every command and option cli.lua knows, and
-- `make install` installs both.
local h = require "tests.helpers"
local cli = require "sluice.cli"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

describe("help", function()
  after_each(h.cleanup)

  it("sluice COMMAND --help prints that command's usage and exits 0", function()
    for _, cmd in ipairs { "run", "check", "graph", "repl", "attach", "top", "ps", "test",
      "help", "-e" } do
      local res = h.run(h.q(cmd) .. " --help")
      h.expect_code(res, 0)
      h.contains(res.stdout, "usage: sluice " .. cmd, cmd .. " --help")
      assert.equal("", res.stderr)
    end
  end)

  it("-h works too, and --help after a script is the help, not an unknown option", function()
    local res = h.run("run -h")
    h.expect_code(res, 0)
    h.contains(res.stdout, "usage: sluice run")
    res = h.run("run job.lua --help")
    h.expect_code(res, 0)
    h.contains(res.stdout, "usage: sluice run")
  end)

  it("run --help lists every option of run", function()
    local res = h.run("run --help")
    for _, opt in ipairs(cli.options.run) do h.contains(res.stdout, opt, "run --help") end
  end)

  it("sluice help COMMAND is COMMAND --help; sluice help alone is the overview", function()
    local a, b = h.run("help graph"), h.run("graph --help")
    h.expect_code(a, 0)
    assert.equal(b.stdout, a.stdout)
    local overview = h.run("help")
    h.expect_code(overview, 0)
    for _, cmd in ipairs(cli.commands) do h.contains(overview.stdout, cmd, "sluice help") end
    assert.equal(h.run("--help").stdout, overview.stdout)
  end)

  it("sluice help of an unknown command exits 2 and names it", function()
    local res = h.run("help frobnicate")
    h.expect_code(res, 2)
    h.contains(res.stderr, "frobnicate")
  end)

  it("the man page names every command and option, and is valid troff", function()
    local man = read("docs/sluice.1")
    assert.truthy(man:find("^%.\\\"") and man:find("\n%.TH SLUICE 1"))
    local text = man:gsub("\\%-", "-")
    for _, cmd in ipairs(cli.commands) do h.contains(text, "\n.B sluice " .. cmd, "sluice.1") end
    for cmd, opts in pairs(cli.options) do
      for _, opt in ipairs(opts) do h.contains(text, opt, "sluice.1 (" .. cmd .. ")") end
    end
    if os.execute("command -v groff >/dev/null 2>&1") == 0 then
      local p = io.popen("groff -man -Tutf8 -ww -z docs/sluice.1 2>&1")
      local warnings = p:read("*a")
      p:close()
      assert.equal("", warnings)
    end
  end)

  it("the bash completion completes commands and each command's options", function()
    local script = read("scripts/sluice.bash-completion")
    for _, cmd in ipairs(cli.commands) do h.contains(script, cmd, "completion") end
    if os.execute("command -v bash >/dev/null 2>&1") ~= 0 then return end
    local function complete(...)
      local words = { "sluice", ... }
      local quoted = {}
      for i, w in ipairs(words) do quoted[i] = h.q(w) end
      local p = io.popen("bash -c " .. h.q("source scripts/sluice.bash-completion; COMP_WORDS=(" ..
        table.concat(quoted, " ") .. "); COMP_CWORD=" .. (#words - 1) ..
        "; _sluice; printf '%s\\n' \"${COMPREPLY[@]}\"") .. " 2>&1")
      local out = p:read("*a")
      p:close()
      return h.lines(out)
    end
    local top = complete("")
    for _, cmd in ipairs(cli.commands) do h.contains(" " .. table.concat(top, " ") .. " ", " " .. cmd .. " ") end
    for cmd, opts in pairs(cli.options) do
      local got = " " .. table.concat(complete(cmd, "x", "--"), " ") .. " "
      for _, opt in ipairs(opts) do h.contains(got, " " .. opt .. " ", cmd .. " --<Tab>") end
    end
    assert.same({ "dot" }, complete("graph", "x.lua", "--format", "d"))
  end)

  it("make install puts the man page and the completion under PREFIX/share", function()
    local prefix = h.tmpdir()
    local ok = os.execute("make -s install PREFIX=" .. h.q(prefix) .. " >/dev/null 2>&1")
    assert.truthy(ok == 0 or ok == true, "make install failed")
    assert.equal(read("docs/sluice.1"), read(prefix .. "/share/man/man1/sluice.1"))
    assert.equal(read("scripts/sluice.bash-completion"),
      read(prefix .. "/share/bash-completion/completions/sluice"))
  end)
end)
