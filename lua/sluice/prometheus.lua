-- prometheus.lua -- job:metrics() as Prometheus' text exposition format 0.0.4, what
-- --metrics serves at GET /metrics (metrics_server.lua publishes it).
--
-- A pure function of the rows inspect.metrics returns: one family per figure, each with
-- its # HELP and # TYPE lines once and then a sample per operator (labels operator, id,
-- kind), so that /metrics, job:metrics() and sluice top show the same numbers.
local format, concat, floor = string.format, table.concat, math.floor
local huge = math.huge

local prometheus = {}

-- A sample value: whole numbers exactly, others with 9 significant digits; infinities
-- and NaN as the format spells them.
local function value_text(v)
  if v ~= v then return "NaN" end
  if v == huge then return "+Inf" end
  if v == -huge then return "-Inf" end
  if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return format("%.0f", v) end
  return format("%.9g", v)
end
prometheus.value_text = value_text

local LABEL_ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }

-- A label value escaped as the format says: backslash, double quote and newline.
local function escape_label(s)
  return (tostring(s):gsub('[\\"\n]', LABEL_ESCAPES))
end
prometheus.escape_label = escape_label

-- {name="value",...} of `labels`, an array of {name, value} pairs (in that order).
local function labels_text(labels)
  local parts = {}
  for i, l in ipairs(labels) do parts[i] = format('%s="%s"', l[1], escape_label(l[2])) end
  return "{" .. concat(parts, ",") .. "}"
end

-- The labels of an operator's row: its name (or what the operator column shows), its
-- id(s) and its kind.
local function operator_labels(r)
  return { { "operator", r.name or r.operator or "" }, { "id", r.id or "" },
    { "kind", r.kind or "" } }
end

local function is_operator(r) return r.kind ~= "checkpoint" and r.kind ~= "process" end

-- The families, in the order they are written: name, type, help, and what each row gives
-- (a field of the row, or a function of the row and the render's options returning the
-- value, or a list of {labels, value} for families of their own labels).
local FAMILIES = {
  { "sluice_operator_records_in_total", "counter",
    "Records an operator received (sinks included).", "records_in", is_operator },
  { "sluice_operator_records_out_total", "counter",
    "Records an operator emitted (a source: records read).", "records_out", is_operator },
  { "sluice_operator_errors_total", "counter",
    "Records on which an operator's function raised, or a sink failed.", "errors",
    is_operator },
  { "sluice_dead_letters_total", "counter", "Records an operator sent to the dead letters.",
    "dead_letters", is_operator },
  { "sluice_late_records_total", "counter",
    "Records a window received after its watermark had passed their window.", "late",
    is_operator },
  { "sluice_operator_live_keys", "gauge", "Keys that hold state in a keyed operator now.",
    "keys", is_operator },
  { "sluice_watermark_lag_seconds", "gauge",
    "How far an operator's watermark is behind the wall clock.",
    function(r, opts)
      local wm = r.watermark
      if type(wm) ~= "number" or wm == huge or wm == -huge then return nil end
      return (opts.now_ms - wm) / 1000
    end, is_operator },
  { "sluice_sink_queue_bytes", "gauge",
    "Bytes a sink holds that its peer has not taken yet.", "queued_bytes", is_operator },
  { "sluice_kafka_consumer_lag", "gauge",
    "Messages of a Kafka partition that its source has not read yet.",
    function(r)
      if type(r.partition_lag) ~= "table" then return nil end
      local list = {}
      for i, l in ipairs(r.partition_lag) do
        list[i] = { { { "operator", r.name or r.operator or "" }, { "id", r.id or "" },
          { "topic", l.topic }, { "partition", l.partition } }, l.lag }
      end
      return list
    end, is_operator, true },
  { "sluice_checkpoints_total", "counter", "Checkpoints that became durable.",
    "records_out", function(r) return r.kind == "checkpoint" end },
  { "sluice_checkpoint_failures_total", "counter", "Checkpoints that failed.",
    "errors", function(r) return r.kind == "checkpoint" end },
  { "sluice_checkpoint_duration_seconds", "gauge",
    "How long the last durable checkpoint took, from its cut to its file on disk.",
    function(r) return r.duration_ms and r.duration_ms / 1000 end,
    function(r) return r.kind == "checkpoint" end },
  { "sluice_checkpoint_duration_max_seconds", "gauge",
    "The longest a durable checkpoint of this run took.",
    function(r) return r.duration_ms and r.max_duration_ms / 1000 end,
    function(r) return r.kind == "checkpoint" end },
  { "sluice_checkpoint_pause_seconds", "gauge",
    "How long the last checkpoint paused the job (its cut and fork).",
    function(r) return r.pause_ms and r.pause_ms / 1000 end,
    function(r) return r.kind == "checkpoint" end },
  { "sluice_checkpoint_age_seconds", "gauge",
    "Seconds since the last checkpoint became durable.", "age_s",
    function(r) return r.kind == "checkpoint" end },
  { "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "rss",
    function(r) return r.kind == "process" end },
  { "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
    "cpu_seconds", function(r) return r.kind == "process" end },
  { "sluice_lua_heap_bytes", "gauge", "Bytes the Lua heap holds, garbage not yet collected included.",
    "heap", function(r) return r.kind == "process" end },
}

-- The exposition text of `rows` (inspect.metrics' list). opts.now_ms: the wall clock the
-- watermark lags are measured against (the time the rows were taken). A family no row has
-- a value for is left out.
function prometheus.render(rows, opts)
  local out = {}
  for _, f in ipairs(FAMILIES) do
    local name, kind, help, field, wanted, own_labels = f[1], f[2], f[3], f[4], f[5], f[6]
    local samples = {}
    for _, r in ipairs(rows) do
      if type(r) == "table" and wanted(r) then
        local v
        if type(field) == "function" then v = field(r, opts) else v = r[field] end
        if own_labels and v then
          for _, s in ipairs(v) do
            if type(s[2]) == "number" then
              samples[#samples + 1] = name .. labels_text(s[1]) .. " " .. value_text(s[2])
            end
          end
        elseif type(v) == "number" then
          local labels = is_operator(r) and labels_text(operator_labels(r)) or ""
          samples[#samples + 1] = name .. labels .. " " .. value_text(v)
        end
      end
    end
    if #samples > 0 then
      out[#out + 1] = format("# HELP %s %s", name, (help:gsub("\\", "\\\\"):gsub("\n", "\\n")))
      out[#out + 1] = format("# TYPE %s %s", name, kind)
      for _, s in ipairs(samples) do out[#out + 1] = s end
    end
  end
  out[#out + 1] = ""
  return concat(out, "\n")
end

return prometheus
