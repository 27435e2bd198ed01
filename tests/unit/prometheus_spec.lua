-- Specs for lua/sluice/prometheus.lua: job:metrics() rows (a fixed table here) rendered as
-- Prometheus' text format 0.0.4, compared line for line; value and label escaping.
local prometheus = require "sluice.prometheus"

local NOW = 1700000010000       -- the wall clock of the render, in ms

local ROWS = {
  { id = "#1", operator = "source.kafka in", kind = "source", records_out = 120, errors = 0,
    dead_letters = 2, consumer_lag = 7, watermark = NOW - 1500,
    partition_lag = { { topic = "in", partition = 0, lag = 3 },
      { topic = "in", partition = 1, lag = 4 } } },
  { id = "#2-#4", operator = 'say "hi"\\n\nnow', kind = "map", records_in = 118,
    records_out = 118, errors = 1, dead_letters = 1, rate_in = 12, rate_out = 12 },
  { id = "#5", operator = "per_user", kind = "window", records_in = 118, records_out = 9,
    errors = 0, dead_letters = 0, late = 3, keys = 5, watermark = NOW - 250,
    watermark_lag = "250ms" },
  { id = "#6", operator = "sink.tcp 127.0.0.1:9000", kind = "sink", records_in = 9, errors = 0,
    dead_letters = 0, queued_bytes = 4096 },
  { operator = "(checkpoints)", kind = "checkpoint", records_out = 4, errors = 1, last = 4,
    pause_ms = 1.5, max_pause_ms = 3, duration_ms = 120, max_duration_ms = 250, age_s = 2.5 },
  { operator = "(process)", kind = "process", rss = 52428800, heap = 1048576,
    cpu_seconds = 12.25, cpu_percent = 40 },
}

local WANT = [[
# HELP sluice_operator_records_in_total Records an operator received (sinks included).
# TYPE sluice_operator_records_in_total counter
sluice_operator_records_in_total{operator="say \"hi\"\\n\nnow",id="#2-#4",kind="map"} 118
sluice_operator_records_in_total{operator="per_user",id="#5",kind="window"} 118
sluice_operator_records_in_total{operator="sink.tcp 127.0.0.1:9000",id="#6",kind="sink"} 9
# HELP sluice_operator_records_out_total Records an operator emitted (a source: records read).
# TYPE sluice_operator_records_out_total counter
sluice_operator_records_out_total{operator="source.kafka in",id="#1",kind="source"} 120
sluice_operator_records_out_total{operator="say \"hi\"\\n\nnow",id="#2-#4",kind="map"} 118
sluice_operator_records_out_total{operator="per_user",id="#5",kind="window"} 9
# HELP sluice_operator_errors_total Records on which an operator's function raised, or a sink failed.
# TYPE sluice_operator_errors_total counter
sluice_operator_errors_total{operator="source.kafka in",id="#1",kind="source"} 0
sluice_operator_errors_total{operator="say \"hi\"\\n\nnow",id="#2-#4",kind="map"} 1
sluice_operator_errors_total{operator="per_user",id="#5",kind="window"} 0
sluice_operator_errors_total{operator="sink.tcp 127.0.0.1:9000",id="#6",kind="sink"} 0
# HELP sluice_dead_letters_total Records an operator sent to the dead letters.
# TYPE sluice_dead_letters_total counter
sluice_dead_letters_total{operator="source.kafka in",id="#1",kind="source"} 2
sluice_dead_letters_total{operator="say \"hi\"\\n\nnow",id="#2-#4",kind="map"} 1
sluice_dead_letters_total{operator="per_user",id="#5",kind="window"} 0
sluice_dead_letters_total{operator="sink.tcp 127.0.0.1:9000",id="#6",kind="sink"} 0
# HELP sluice_late_records_total Records a window received after its watermark had passed their window.
# TYPE sluice_late_records_total counter
sluice_late_records_total{operator="per_user",id="#5",kind="window"} 3
# HELP sluice_operator_live_keys Keys that hold state in a keyed operator now.
# TYPE sluice_operator_live_keys gauge
sluice_operator_live_keys{operator="per_user",id="#5",kind="window"} 5
# HELP sluice_watermark_lag_seconds How far an operator's watermark is behind the wall clock.
# TYPE sluice_watermark_lag_seconds gauge
sluice_watermark_lag_seconds{operator="source.kafka in",id="#1",kind="source"} 1.5
sluice_watermark_lag_seconds{operator="per_user",id="#5",kind="window"} 0.25
# HELP sluice_sink_queue_bytes Bytes a sink holds that its peer has not taken yet.
# TYPE sluice_sink_queue_bytes gauge
sluice_sink_queue_bytes{operator="sink.tcp 127.0.0.1:9000",id="#6",kind="sink"} 4096
# HELP sluice_kafka_consumer_lag Messages of a Kafka partition that its source has not read yet.
# TYPE sluice_kafka_consumer_lag gauge
sluice_kafka_consumer_lag{operator="source.kafka in",id="#1",topic="in",partition="0"} 3
sluice_kafka_consumer_lag{operator="source.kafka in",id="#1",topic="in",partition="1"} 4
# HELP sluice_checkpoints_total Checkpoints that became durable.
# TYPE sluice_checkpoints_total counter
sluice_checkpoints_total 4
# HELP sluice_checkpoint_failures_total Checkpoints that failed.
# TYPE sluice_checkpoint_failures_total counter
sluice_checkpoint_failures_total 1
# HELP sluice_checkpoint_duration_seconds How long the last durable checkpoint took, from its cut to its file on disk.
# TYPE sluice_checkpoint_duration_seconds gauge
sluice_checkpoint_duration_seconds 0.12
# HELP sluice_checkpoint_duration_max_seconds The longest a durable checkpoint of this run took.
# TYPE sluice_checkpoint_duration_max_seconds gauge
sluice_checkpoint_duration_max_seconds 0.25
# HELP sluice_checkpoint_pause_seconds How long the last checkpoint paused the job (its cut and fork).
# TYPE sluice_checkpoint_pause_seconds gauge
sluice_checkpoint_pause_seconds 0.0015
# HELP sluice_checkpoint_age_seconds Seconds since the last checkpoint became durable.
# TYPE sluice_checkpoint_age_seconds gauge
sluice_checkpoint_age_seconds 2.5
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 52428800
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.25
# HELP sluice_lua_heap_bytes Bytes the Lua heap holds, garbage not yet collected included.
# TYPE sluice_lua_heap_bytes gauge
sluice_lua_heap_bytes 1048576
]]

local function lines(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

describe("prometheus.render", function()
  it("renders every family once, with HELP and TYPE, from a fixed metrics table", function()
    local got = prometheus.render(ROWS, { now_ms = NOW })
    local want_lines, got_lines = lines(WANT), lines(got)
    for i = 1, math.max(#want_lines, #got_lines) do
      assert.are.equal(want_lines[i], got_lines[i], "line " .. i)
    end
    assert.are.equal(WANT, got)
  end)

  it("leaves out families no row has, and renders no rows as an empty text", function()
    assert.are.equal("", prometheus.render({}, { now_ms = NOW }))
    local got = prometheus.render({ { id = "#1", operator = "values", kind = "source",
      records_out = 3 } }, { now_ms = NOW })
    assert.are.equal("# HELP sluice_operator_records_out_total Records an operator emitted " ..
      "(a source: records read).\n# TYPE sluice_operator_records_out_total counter\n" ..
      'sluice_operator_records_out_total{operator="values",id="#1",kind="source"} 3\n', got)
  end)

  it("writes values as the format spells them", function()
    local v = prometheus.value_text
    assert.are.equal("0", v(0))
    assert.are.equal("9007199254740991", v(2 ^ 53 - 1))
    assert.are.equal("1.5", v(1.5))
    assert.are.equal("0.333333333", v(1 / 3))
    assert.are.equal("+Inf", v(math.huge))
    assert.are.equal("-Inf", v(-math.huge))
    assert.are.equal("NaN", v(0 / 0))
  end)

  it("escapes backslash, double quote and newline in label values, and nothing else", function()
    local e = prometheus.escape_label
    assert.are.equal('a\\\\b\\"c\\nd', e('a\\b"c\nd'))
    assert.are.equal("sink.file /tmp/x y.json {}", e("sink.file /tmp/x y.json {}"))
  end)
end)
