-- stream.lua -- the builder: the stream methods a script calls.
--
-- A stream is a handle on one output port of a graph node, plus whether it is keyed or
-- windowed. Every method checks its arguments, records the user's line, adds a node and
-- returns a new stream; nothing runs here. Misuse is reported through report.fail, so
-- `sluice check` can list every mistake in a script.
local graph = require "sluice.graph"
local report = require "sluice.report"
local duration = require "sluice.duration"

local type, format, setmetatable, select = type, string.format, setmetatable, select
local fail, where = report.fail, report.where

local Stream = {}
Stream.__index = Stream

local stream = { Stream = Stream }

-- A new stream on `port` of `node`; `mode` is nil, "keyed" or "windowed".
local function new(node, port, mode, extra)
  local s = setmetatable(extra or {}, Stream)
  s.node, s.port, s.mode = node, port or 1, mode
  return s
end
stream.new = new

function stream.is_stream(v) return getmetatable(v) == Stream end

-- Checks a function argument of method `m`; a string names a record field where the
-- contract allows it (`field_ok`). Returns the function (or a field accessor) and the field.
local function want_fn(m, f, field_ok)
  if type(f) == "function" then return f end
  if field_ok and type(f) == "string" then
    return function(r) return r[f] end, f
  end
  fail(format("%s(): expected a function%s, got %s", m, field_ok and " or a field name" or "",
    type(f)))
  return function() end
end
stream.want_fn = want_fn

-- Adds a node of `kind` reading this stream, and returns the stream it outputs.
function Stream:_op(kind, fields, mode)
  fields = fields or {}
  fields.where = fields.where or where()
  local node = graph.node(kind, { { node = self.node, port = self.port } }, fields)
  return new(node, 1, mode)
end

-- ---- stateless operators -------------------------------------------------------------

function Stream:map(f) return self:_op("map", { fn = want_fn("map", f) }) end
function Stream:filter(f) return self:_op("filter", { fn = want_fn("filter", f) }) end
function Stream:flat_map(f) return self:_op("flat_map", { fn = want_fn("flat_map", f) }) end
function Stream:peek(f) return self:_op("peek", { fn = want_fn("peek", f) }) end

function Stream:take(n)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    fail(format("take(): expected a whole number >= 0, got %s", tostring(n)))
    n = 0
  end
  return self:_op("take", { n = n, label = format("take %d", n) })
end

function Stream:key_by(f)
  local fn, field = want_fn("key_by", f, true)
  return self:_op("key_by", { fn = fn, field = field,
    label = field and format("key_by %s", field) or "key_by" }, "keyed")
end

-- Names the operator just added: its id for state, metrics, taps and reload.
function Stream:name(s)
  if type(s) ~= "string" or s == "" then
    fail(format("name(): expected a non-empty string, got %s", type(s)))
    return self
  end
  for _, node in ipairs(graph.current().nodes) do
    if node.name == s and node ~= self.node then
      fail(format("name(): %q is already the name of the operator at %s", s, node.where or "?"))
      return self
    end
  end
  self.node.name = s
  return self
end

function Stream:union(...)
  local inputs = { { node = self.node, port = self.port } }
  for i = 1, select("#", ...) do
    local other = select(i, ...)
    if not stream.is_stream(other) then
      fail(format("union(): argument %d is not a stream (got %s)", i, type(other)))
    else
      inputs[#inputs + 1] = { node = other.node, port = other.port }
    end
  end
  return new(graph.node("union", inputs, { where = where() }))
end

-- Returns two streams: the records for which f(r) is truthy, and the rest.
function Stream:partition(f)
  local node = graph.node("partition", { { node = self.node, port = self.port } },
    { fn = want_fn("partition", f), where = where() })
  return new(node, 1), new(node, 2)
end

-- Ends the chain in `spec` (a sink from sl.sink.*); returns this stream for more sinks.
-- Streams that name the same sink object all write to that one sink.
function Stream:sink(spec)
  if type(spec) ~= "table" or not spec.is_sink then
    fail(format("sink(): expected a sink from sl.sink.* (e.g. sl.sink.stdout{}), got %s",
      type(spec)))
    return self
  end
  local input = { node = self.node, port = self.port }
  if spec.node and spec.node.job == graph.current() then
    graph.connect(spec.node, input)
  else
    spec.node = graph.node("sink", { input }, { spec = spec, label = spec.label, where = where(),
      job = graph.current() })
  end
  return self
end

-- ---- keyed and windowed operators: they need a key -------------------------------------

local function needs_key(self, m)
  if self.mode ~= "keyed" then
    fail(format("%s(): stream is not keyed; call key_by first", m))
    return false
  end
  return true
end

local function not_yet(m)
  fail(format("%s(): not implemented in this version of sluice", m))
end

function Stream:window(assigner)
  if not needs_key(self, "window") then return self end
  not_yet("window")
  return self
end

function Stream:window_all(assigner)
  not_yet("window_all")
  return self
end

function Stream:reduce(f)
  if not needs_key(self, "reduce") then return self end
  not_yet("reduce")
  return self
end

function Stream:aggregate(spec)
  if not needs_key(self, "aggregate") then return self end
  not_yet("aggregate")
  return self
end

function Stream:process(spec)
  if not needs_key(self, "process") then return self end
  not_yet("process")
  return self
end

function Stream:timestamp(field, opts)
  want_fn("timestamp", field, true)
  if opts and opts.out_of_orderness ~= nil then
    local _, err = duration.parse(opts.out_of_orderness)
    if err then fail("timestamp(): out_of_orderness: " .. err) end
  end
  not_yet("timestamp")
  return self
end

-- ---- exploring a bounded stream ----------------------------------------------------------

-- Runs the graph up to this stream and returns the array of its records.
function Stream:collect()
  return require("sluice.runtime").collect(self)
end

-- Prints the first n records (default 10) as an aligned table; returns nothing.
function Stream:show(n)
  n = n or 10
  local records = require("sluice.runtime").collect(self:take(n))
  io.stdout:write(require("sluice.format").table(records), "\n")
end

-- The operator graph that feeds this stream, as text.
function Stream:graph(fmt)
  local plan = require "sluice.plan"
  local set = graph.ancestors({ self.node })
  plan.assign_stages(set)
  return graph.render(set, fmt)
end

Stream.__tostring = function(self)
  return format("<stream: %s at %s; :collect(), :show(n), :graph()>", graph.label(self.node),
    self.node.where or "?")
end

return stream
