-- init.lua -- require "sluice": the module a pipeline script sees.
--
-- Gathers the builder (sources, sinks, assigners, aggregates, sl.param), the codecs and
-- sl.testing into one table. Nothing here runs a job: a script only describes one, and the
-- host runs it.
local host = require "sluice.host"
local graph = require "sluice.graph"
local report = require "sluice.report"
local duration = require "sluice.duration"
local stream = require "sluice.stream"
local source = require "sluice.source"
local sink = require "sluice.sink"
local typed = require "sluice.typed"
local schema = require "sluice.schema"
local testing = require "sluice.testing"
require "sluice.explore"        -- streams get collect(), show() and graph()

local core = host.core
local format, type = string.format, type
local fail = report.fail

if not graph.current() then graph.begin() end

local sl = {
  version = host.version,
  null = host.null,
  source = {
    values = source.values,
    file = source.file,
    stdin = source.stdin,
    generator = source.generator,
    tcp = source.tcp,
    udp = source.udp,
    nexmark = source.nexmark,
    kafka = source.kafka,
    http = source.http,
    forward = source.forward,
    redis = source.redis,
  },
  sink = {
    stdout = sink.stdout,
    file = sink.file,
    null = sink.null,
    fn = sink.fn,
    collect = sink.collect,
    tcp = sink.tcp,
    kafka = sink.kafka,
    http = sink.http,
    forward = sink.forward,
    redis = sink.redis,
  },
  -- sl.table.file{...}: a table for stream:lookup()
  table = { file = source.table_file },
  json = { encode = core.json_encode, decode = core.json_decode, null = host.null },
  msgpack = { encode = core.msgpack_encode, decode = core.msgpack_decode },
  -- sl.testing.run(script, {inputs = ..., params = ...}): a script's output, in a spec
  testing = { run = testing.run },
}

-- The table form of a typed record (a view a typed source fills, see typed.lua): what to
-- keep beyond the call that got it. Any other value is returned as it is.
sl.plain = typed.plain

-- sl.schema{name = "i64" | "f64" | "bool" | "string" | sl.schema{...}, ...}: typed records
-- for a JSON, CSV or msgpack source (its schema option; see schema.lua).
sl.schema = schema.new

-- Sends the job's dead letters (bad input, records a function raised on) to `spec`.
function sl.dead_letter(spec)
  if type(spec) ~= "table" or not spec.is_sink then
    fail(format("dead_letter(): expected a sink from sl.sink.*, got %s", type(spec)))
    return
  end
  graph.current().dead_letter = spec
end

-- Milliseconds for a duration ("10s", 250, ...); raises at the caller's line if bad.
function sl.duration(d)
  local ms, err = duration.parse(d)
  if not ms then fail("duration(): " .. err) end
  return ms or 0
end

-- ---- parameters -----------------------------------------------------------------------

local truth = { ["true"] = true, yes = true, on = true, ["1"] = true,
  ["false"] = false, no = false, off = false, ["0"] = false }

-- The value of `--set name=value` for the script being compiled, else `default`. A number
-- default makes the value a number, a boolean default a boolean (true/false, yes/no,
-- on/off, 1/0); one that is not is a mistake at the caller's line.
function sl.param(name, default)
  if type(name) ~= "string" or name == "" then
    fail(format("param(): expected a name (a non-empty string), got %s", type(name)))
    return default
  end
  local job = graph.current()
  local value = job and job.params and job.params[name]
  if value == nil then return default end
  local want = type(default)
  if want == "number" then
    local n = tonumber(value)
    if n then return n end
    fail(format("param(%q): expected a number, got %q (--set %s=%s)", name, tostring(value),
      name, tostring(value)))
    return default
  elseif want == "boolean" then
    local b = value
    if type(b) ~= "boolean" then b = truth[tostring(value):lower()] end
    if b ~= nil then return b end
    fail(format("param(%q): expected true or false, got %q (--set %s=%s)", name,
      tostring(value), name, tostring(value)))
    return default
  end
  return value
end

-- ---- window assigners -----------------------------------------------------------------

local function want_duration(m, d)
  local ms, err = duration.parse(d)
  if not ms or ms <= 0 then
    fail(format("%s: %s", m, err or format("duration must be > 0, got %s", tostring(d))))
    return 1
  end
  return ms
end

function sl.tumbling(size)
  return { assigner = "tumbling", size = want_duration("tumbling()", size) }
end

function sl.sliding(size, slide)
  return { assigner = "sliding", size = want_duration("sliding()", size),
    slide = want_duration("sliding()", slide) }
end

function sl.session(gap)
  return { assigner = "session", gap = want_duration("session()", gap) }
end

function sl.count_window(n)
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
    fail(format("count_window(): expected a whole number >= 1, got %s", tostring(n)))
    n = 1
  end
  return { assigner = "count", n = n }
end

-- ---- aggregates -----------------------------------------------------------------------

local function aggregate(kind, needs_fn)
  return function(f, q)
    local fn, field
    if needs_fn or f ~= nil then fn, field = stream.want_fn(kind, f, true) end
    return { aggregate = kind, fn = fn, field = field, q = q }
  end
end

sl.count = aggregate("count", false)
sl.sum = aggregate("sum", true)
sl.min = aggregate("min", true)
sl.max = aggregate("max", true)
sl.avg = aggregate("avg", true)
sl.first = aggregate("first", true)
sl.last = aggregate("last", true)
sl.collect = aggregate("collect", true)
sl.distinct = aggregate("distinct", true)
local quantile = aggregate("quantile", true)
function sl.quantile(f, q)
  if q == nil then q = 0.5 end
  if type(q) ~= "number" or q < 0 or q > 1 then
    fail(format("quantile(): q must be a number from 0 to 1, got %s", tostring(q)))
    q = 0.5
  end
  return quantile(f, q)
end

return sl
