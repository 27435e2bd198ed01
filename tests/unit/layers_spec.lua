-- The modules of lua/sluice in one-way layers. Each module names its layer below; a module
-- may require modules of its own layer or a lower one, never a higher one, and never in a
-- cycle. Every `require` of a sluice module counts, wherever it stands, and it must stand
-- at the top of its file: a require inside a function is how a cycle hides.
--
--   1 boundary   the host (C) and helpers every layer uses
--   2 dsl        what a script builds: nodes, streams, source and sink declarations
--   3 compile    a script into its graph, and the graph into fused stages
--   4 runtime    a job running the graph on the loop: receivers, keyed operators
--   5 app        what people use: sl, exploring, reload, inspecting, checkpoints, the
--                control socket, the REPL and the command line
local LAYERS = {
  boundary = { "core", "host", "typed", "schema", "report", "duration", "format", "flow", "agg",
    "nexmark", "kafka", "http", "http_sink", "forward", "redis" },
  dsl = { "graph", "stream", "source", "sink" },
  compile = { "compile", "plan" },
  runtime = { "tasks", "stage", "keyed", "key_state", "keyed_tasks", "changelog", "expiry",
    "combiner", "window", "rolling", "process", "join", "lookup", "scan", "dedupe", "changes", "batch",
    "operator", "dead_letters", "guard", "ordered", "exchange", "runtime" },
  app = { "init", "explore", "inspect", "help", "reload", "snapshot_check", "checkpoint",
    "control", "memory", "repl", "cli", "busted_output", "testing", "worker",
    "prometheus", "metrics_server", "repartition", "group" },
}
local ORDER = { "boundary", "dsl", "compile", "runtime", "app" }

local DIR = "lua/sluice/"

-- module name ("runtime"; "init" for require "sluice") -> { layer = rank, name = layer name }
local layer_of = {}
for rank, name in ipairs(ORDER) do
  for _, m in ipairs(LAYERS[name]) do layer_of[m] = { rank = rank, name = name } end
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- The sluice modules a file requires: array of { module =, line =, top = at the top level }.
-- "sluice" alone is init.
local function requires_of(text)
  local found, n = {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local code = line:gsub("%-%-.*$", "")
    for name in code:gmatch("require%s*%(?%s*[\"']([%w_.]+)[\"']") do
      local m = name == "sluice" and "init" or name:match("^sluice%.([%w_]+)$")
      if m then found[#found + 1] = { module = m, line = n, top = not code:find("^%s") } end
    end
    for name in code:gmatch("package%.loaded%[%s*[\"']([%w_.]+)[\"']") do
      local m = name == "sluice" and "init" or name:match("^sluice%.([%w_]+)$")
      if m then found[#found + 1] = { module = m, line = n, top = false, loaded = true } end
    end
  end
  return found
end

local function modules_on_disk()
  local list = {}
  local p = assert(io.popen("ls " .. DIR))
  for name in p:lines() do
    local m = name:match("^([%w_]+)%.lua$")
    if m then list[#list + 1] = m end
  end
  p:close()
  table.sort(list)
  return list
end

-- module -> its requires, for every module on disk
local function dependency_graph()
  local deps = {}
  for _, m in ipairs(modules_on_disk()) do deps[m] = requires_of(read(DIR .. m .. ".lua")) end
  return deps
end

-- The first cycle found in deps, as "a -> b -> a", or nil.
local function find_cycle(deps)
  local state, stack = {}, {}
  local function visit(m)
    state[m] = "open"
    stack[#stack + 1] = m
    for _, r in ipairs(deps[m] or {}) do
      local d = r.module
      if state[d] == "open" then
        local from
        for i, s in ipairs(stack) do if s == d then from = i end end
        local path = { unpack(stack, from) }
        path[#path + 1] = d
        return table.concat(path, " -> ")
      elseif state[d] == nil and deps[d] then
        local c = visit(d)
        if c then return c end
      end
    end
    stack[#stack] = nil
    state[m] = "done"
  end
  local names = {}
  for m in pairs(deps) do names[#names + 1] = m end
  table.sort(names)
  for _, m in ipairs(names) do
    if state[m] == nil then
      local c = visit(m)
      if c then return c end
    end
  end
end

describe("module layers", function()
  local deps = dependency_graph()

  it("places every module of lua/sluice in a layer, and names no module that is gone", function()
    for m in pairs(deps) do
      assert(layer_of[m], DIR .. m .. ".lua is in no layer: add it to LAYERS in this spec")
    end
    for m in pairs(layer_of) do
      assert(m == "core" or deps[m], "LAYERS names " .. m .. ", which lua/sluice does not have")
    end
  end)

  it("requires only modules of the same or a lower layer", function()
    local wrong = {}
    for m, list in pairs(deps) do
      for _, r in ipairs(list) do
        local from, to = layer_of[m], layer_of[r.module]
        if from and to and to.rank > from.rank then
          wrong[#wrong + 1] = string.format("%s%s.lua:%d: %s (%s) requires %s (%s)", DIR, m,
            r.line, m, from.name, r.module, to.name)
        end
      end
    end
    table.sort(wrong)
    assert.same({}, wrong)
  end)

  it("requires sluice modules at the top of the file only", function()
    local lazy = {}
    for m, list in pairs(deps) do
      for _, r in ipairs(list) do
        if not r.top then
          lazy[#lazy + 1] = string.format("%s%s.lua:%d: %s %s", DIR, m, r.line,
            r.loaded and "looks up package.loaded for" or "requires inside a block:", r.module)
        end
      end
    end
    table.sort(lazy)
    assert.same({}, lazy)
  end)

  it("has no cycle of requires", function()
    assert.is_nil(find_cycle(deps))
  end)

  -- The checks above must be able to fail: they do on made-up modules.
  it("finds a cycle, an upward require and a lazy one in made-up modules", function()
    local made_up = {
      runtime = requires_of('local s = require "sluice.stage"\nlocal x = require("sluice.cli")\n'),
      stage = requires_of('local r = require "sluice.runtime"\n'),
      graph = requires_of('local function f()\n  return require "sluice.plan"\nend\n'),
    }
    assert.equal("runtime -> stage -> runtime", find_cycle(made_up))
    assert.same({ module = "cli", line = 2, top = true }, made_up.runtime[2])
    assert.is_true(layer_of.cli.rank > layer_of.runtime.rank)
    assert.same({ module = "plan", line = 2, top = false }, made_up.graph[1])
    assert.same({ { module = "init", line = 1, top = true } }, requires_of('local sl = require "sluice"'))
  end)
end)
