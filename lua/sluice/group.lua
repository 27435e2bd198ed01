-- group.lua -- one job across processes and machines on Kafka (sluice run --group NAME).
--
-- Every process started with --group NAME is a member of consumer group NAME: its Kafka
-- sources join the group, whose protocol (cooperative-sticky) splits the input
-- partitions among the members. Each keyed operator keeps its state per input partition
-- (keyed_tasks.lua) and writes it, at each commit, to the compacted changelog topic
-- NAME-<operator>-changelog (changelog.lua). The member a partition is assigned to
-- restores the partition's state from there before it processes a record of it; a
-- member whose partition is revoked commits first (its changes and its offsets: the
-- next owner starts exactly where it stopped) and drops the partition's state.
--
-- A commit, every --checkpoint-every (default 10 s) and at a revoke and at the end:
--   1. each task's changed keys go to its changelog partition;
--   2. with an exactly_once Kafka sink, they are in its transaction, and the sources'
--      offsets join it (send_offsets_to_transaction), and it commits: outputs, state and
--      offsets at once (Kafka's exactly-once v2);
--   3. else every Kafka sink and the changelog writes are delivered, then the offsets are
--      stored for the group (at least once: after a crash the records since the last
--      commit are read again, and counted again in state written after them).
-- This module is the app layer's: the runtime knows of it only through job hooks and the
-- operator maker it is given (runtime.new's `group`).
local host = require "sluice.host"
local graph = require "sluice.graph"
local runtime = require "sluice.runtime"
local operator = require "sluice.operator"
local keyed_tasks = require "sluice.keyed_tasks"
local changelog = require "sluice.changelog"
local tasks = require "sluice.tasks"
local report = require "sluice.report"
local plan = require "sluice.plan"
local repartition = require "sluice.repartition"

local core = host.core
local format, ipairs, pairs = string.format, ipairs, pairs
local say = report.say

local group = {}

local TIMEOUT_MS = 30000        -- metadata, topic creation, restores: how long they may take
local FLUSH_MS = 30000          -- a commit's deliveries

-- A topic name's part for an operator id: Kafka allows [a-zA-Z0-9._-], up to 249 in all.
local function topic_part(id)
  local s = id:gsub("[^%w._-]+", "-"):gsub("^-+", ""):gsub("-+$", "")
  if s == "" then s = "op" end
  return s
end

-- The part of the graph a node belongs to up to the sources (Kafka Streams' "sub-
-- topology"): the sources upstream of it, and the keyed operators between them and it.
local function upstream_of(node)
  local sources, keyed = {}, {}
  local seen = {}
  local function walk(n)
    for _, input in ipairs(n.inputs) do
      local up = input.node
      if not seen[up] then
        seen[up] = true
        if up.kind == "source" then
          sources[#sources + 1] = up
        else
          if operator.kinds[up.kind] then keyed[#keyed + 1] = up end
          walk(up)
        end
      end
    end
  end
  walk(node)
  return sources, keyed
end

-- The key_by a keyed node takes its key from: the nearest one upstream through
-- stateless operators, or nil (a window_all, a scan of a stream not keyed).
local function key_by_of(node)
  local n = node
  while n.inputs[1] do
    local up = n.inputs[1].node
    if up.kind == "key_by" then return up end
    if up.kind == "source" or operator.kinds[up.kind] or #n.inputs ~= 1 then return nil end
    n = up
  end
  return nil
end

-- Whether key_by node `kb` keys by the message key of source `src` (the field the
-- source's `key` option names, or `key` of meta=true records): its records are then
-- partitioned by it already, and each key's records come from one partition. A
-- repartition topic's records are partitioned by the key its writer was given.
local function keyed_by_message_key(kb, src)
  if src.spec.repartitioned then return src.spec.repartitioned == kb end
  local field = kb.field             -- (a key_by node's own: field or fn)
  if not field then return false end
  if src.spec.meta then return field == "key" end
  return src.spec.key ~= nil and field == src.spec.key
end

-- A node made here (not by the script), at `at`'s place in the script.
local function made(kind, inputs, fields, at)
  local node = fields
  node.kind, node.inputs, node.consumers, node.where = kind, {}, {}, at.where
  node.id = at.id - 0.5         -- (until renumber: after what feeds `at`, before `at`)
  for _, input in ipairs(inputs) do graph.connect(node, input) end
  return node
end

-- Numbers the nodes of `set` again in an order where each comes after its inputs (the
-- order graph.ordered and the runtime go by), nodes made here included.
local function renumber(set)
  local list = graph.ordered(set)
  local done, order = {}, {}
  local function visit(n)
    if done[n] then return end
    done[n] = true
    for _, input in ipairs(n.inputs) do if set[input.node] then visit(input.node) end end
    order[#order + 1] = n
  end
  for _, n in ipairs(list) do visit(n) end
  for i, n in ipairs(order) do n.id = i end
end

-- How many partitions topic has: the number, or nil, why, exit status. Asked of the
-- brokers once a topic (a metadata request each time).
function group:partitions(topic, label)
  if self.counts[topic] then return self.counts[topic] end
  local n, err = core.kafka_topic_partitions { brokers = self.brokers, options = self.options,
    topic = topic, timeout = TIMEOUT_MS }
  self.counts[topic] = n
  if n then return n end
  if err == "missing" then return nil, format("%s: topic %s does not exist", label, topic), 1 end
  return nil, format("--group %s: partitions of topic %s: %s", self.name, topic, tostring(err)), 1
end

-- Makes topic (n partitions, config) unless it is there: true, or nil, why, exit status.
function group:ensure_topic(topic, n, config)
  local ok, err = core.kafka_create_topic { brokers = self.brokers, options = self.options,
    topic = topic, partitions = n, config = config, timeout = TIMEOUT_MS }
  if ok then self.counts[topic] = n; return true end
  return nil, format("--group %s: %s", self.name, tostring(err)), 1
end

-- Puts topic `topic` between key_by node `kb` and what feeds it: a writer (a sink) in
-- its place, and a reader (a Kafka source of the group) feeding it, with event time
-- from the messages when the stream has it. `input` is the topic of the part of the
-- graph the key_by is in (its n partitions say the watermarks; the topic has as many),
-- `upstream` the ids of the keyed operators between that input and the key_by.
function group:insert_repartition(set, kb, topic, n, input, upstream, timed)
  local up = kb.inputs[1]
  for i, c in ipairs(up.node.consumers) do
    if c.node == kb then table.remove(up.node.consumers, i); break end
  end
  local label = "repartition " .. topic
  local writer = made("sink", { { node = up.node, port = up.port } }, { label = label,
    spec = { type = "internal", label = "sink." .. label, where = kb.where,
      open = function(_, ctx)
        local ops = {}
        for i, id in ipairs(upstream) do ops[i] = self.by_id[id] and self.by_id[id].op end
        return repartition.writer({ topic = topic, partitions = n, input = input,
          key_field = kb.field, key_fn = kb.fn, upstream = ops, label = "sink." .. label,
          timed = timed,
          produce = function(list) self:produce(list) end,
          held = function() return self.held[input] or {} end }, ctx)
      end } }, kb)
  local hooks = repartition.reader(n)
  self.readers[topic] = hooks
  local reader = made("source", {}, { label = "source.kafka " .. topic,
    spec = { type = "kafka", brokers = self.brokers, topics = { topic }, group = self.name,
      format = "msgpack", start = "earliest", meta = false, bounded = false,
      options = self.options, label = "source.kafka " .. topic, where = kb.where,
      filter = hooks.filter, clock = hooks.clock, repartitioned = kb } }, kb)
  local last = reader
  if timed then
    last = made("timestamp", { { node = reader, port = 1 } }, { fn = repartition.time_of,
      ooo = 0, label = "timestamp (" .. topic .. ")" }, kb)
    set[last] = true
  end
  local unwrap = made("map", { { node = last, port = 1 } }, { fn = repartition.record_of,
    label = "map (" .. topic .. ")" }, kb)
  kb.inputs = { { node = unwrap, port = 1 } }
  unwrap.consumers = { { node = kb, port = 1, index = 1 } }
  set[writer], set[reader], set[unwrap] = true, true, true
end

-- Checks that the job of `set` can run as a member of group `name` and prepares it: its
-- Kafka sources join the group; a key_by on a key other than the message key gets a
-- repartition topic; each keyed operator gets its changelog topic (both made if
-- missing, as many partitions as their input). opts: brokers (--brokers), every_ms
-- (commit interval). Returns the group's controller; or nil, why, exit status (2: the
-- script cannot run so; 1: Kafka said no).
function group.open(name, set, opts)
  if not name:match("^[%w._-]+$") then
    return nil, format("--group: %q is not a usable name (letters, digits, '.', '_', '-': " ..
      "it names the group and the topics sluice makes)", name), 2
  end
  local nodes = graph.ordered(set)
  runtime.assign_ids(nodes)
  local brokers, options = opts.brokers, nil
  local kafka_sources = {}
  for _, node in ipairs(nodes) do
    if node.kind == "source" then
      local spec = node.spec
      if spec.type ~= "kafka" then
        return nil, format("%s: --group: %s is not a Kafka source; a job scaled out on Kafka " ..
          "reads only Kafka topics (every member would read all of it)", tostring(node.where),
          spec.label or ("source." .. spec.type)), 2
      end
      spec.group = name
      brokers = brokers or spec.brokers
      options = options or spec.options
      kafka_sources[#kafka_sources + 1] = node
    end
  end
  if #kafka_sources == 0 then
    return nil, "--group: the script has no Kafka source", 2
  end
  -- on several workers each is a member with sinks of its own: a file or a socket would
  -- be written by all of them at once
  if (opts.workers or 1) > 1 then
    for _, node in ipairs(nodes) do
      if node.kind == "sink" and node.spec.type ~= "kafka" and node.spec.type ~= "null" then
        return nil, format("%s: --group with --workers: %s is written by every worker (each " ..
          "is a member of the group with sinks of its own); use Kafka sinks, or one worker",
          tostring(node.where), node.spec.label or ("sink." .. node.spec.type)), 2
      end
    end
  end
  -- an exactly_once sink's transactional.id is this member's own (the default,
  -- sluice-TOPIC, would make the members fence each other): with exactly-once v2 the
  -- group's generation fences a zombie, so the id need not outlive the process
  local transactional = false
  for _, node in ipairs(nodes) do
    local spec = node.kind == "sink" and node.spec
    if spec and spec.type == "kafka" and spec.exactly_once then
      transactional = true
      local o = {}
      for key, v in pairs(spec.options or {}) do o[key] = v end
      o["transactional.id"] = o["transactional.id"] or format("%s-%s-%s-%d-%d", name,
        spec.topic, os.getenv("HOSTNAME") or "host", core.pid, opts.worker or 1)
      -- a killed member's open transaction holds read_committed readers (of the output,
      -- the repartition topics, a restore) at its start until the brokers abort it: 10 s,
      -- as Kafka Streams sets it, not librdkafka's 60
      o["transaction.timeout.ms"] = o["transaction.timeout.ms"] or 10000
      spec.options = o
    end
  end
  local self = setmetatable({ name = name, brokers = brokers, options = options,
    transactional = transactional, every = opts.every_ms or 10000, keyed = {}, by_id = {},
    readers = {}, held = {}, marked = {}, counts = {}, producer = nil,
    offsets_topic = name .. "-offsets",
    stats = { commits = 0, failed = 0, restores = 0, restore_ms = 0 } }, { __index = group })

  -- what --group cannot scale out, before anything is asked of Kafka
  for _, node in ipairs(nodes) do
    if operator.kinds[node.kind] then
      local at = tostring(node.where)
      if #node.inputs ~= 1 then
        return nil, format("%s: --group: %s joins two streams; a join needs both sides' " ..
          "partitions on one member, which --group does not arrange yet", at, node.kind), 2
      end
      if not key_by_of(node) then
        return nil, format("%s: --group: %s is not keyed (key_by): it would see each " ..
          "member's partitions apart, not the whole stream", at, node.kind), 2
      end
    end
  end
  -- where the members read the input partitions up to: one partition, compacted
  local made_it, oerr, ostatus = self:ensure_topic(self.offsets_topic, 1,
    { ["cleanup.policy"] = "compact" })
  if not made_it then return nil, oerr, ostatus end

  -- the key_bys that need a repartition topic, in the order of the graph (one before
  -- another downstream of it, whose input is then the first one's topic)
  local done = {}
  for _, node in ipairs(nodes) do
    if operator.kinds[node.kind] then
      local kb = key_by_of(node)
      if not done[kb] then
        done[kb] = true
        local srcs, keyed = upstream_of(kb)
        if #srcs ~= 1 or #srcs[1].spec.topics ~= 1 then
          return nil, format("%s: --group: the key_by here reads %s; under --group a keyed " ..
            "operator reads one topic (its state is kept per partition of it)",
            tostring(kb.where), #srcs == 1 and "several topics" or "several sources"), 2
        end
        local src = srcs[1]
        local input = src.spec.topics[1]
        if #keyed > 0 or not keyed_by_message_key(kb, src) then
          local writers, err, status = self:partitions(input, src.spec.label)
          if not writers then return nil, err, status end
          local topic = format("%s-%s-repartition", name, topic_part(node.name or kb.state_id))
          local ok, cerr, cstatus = self:ensure_topic(topic, writers, nil)
          if not ok then return nil, cerr, cstatus end
          local ids = {}
          for i, k in ipairs(keyed) do ids[i] = k.state_id end
          self:insert_repartition(set, kb, topic, writers, input, ids,
            plan.timed(kb.inputs[1].node))
        end
      end
    end
  end
  renumber(set)
  nodes = graph.ordered(set)
  runtime.assign_ids(nodes)

  for _, node in ipairs(nodes) do
    if operator.kinds[node.kind] then
      local srcs = upstream_of(node)
      local input = srcs[1].spec.topics[1]
      local n, err, status = self:partitions(input, srcs[1].spec.label)
      if not n then return nil, err, status end
      local log_topic = format("%s-%s-changelog", name, topic_part(node.state_id))
      local ok, cerr, cstatus = self:ensure_topic(log_topic, n, { ["cleanup.policy"] = "compact" })
      if not ok then return nil, cerr, cstatus end
      local k = { node = node, id = node.state_id, input = input, partitions = n,
        topic = log_topic }
      self.keyed[#self.keyed + 1] = k
      self.by_id[node.state_id] = k
    end
  end
  return self
end

-- The maker of keyed operators runtime.new uses under --group: each keeps its state per
-- task; this controller learns of each as it is built (a reload builds them again).
function group:maker(kind)
  return keyed_tasks.maker(operator.kinds[kind], function(node, op)
    local k = self.by_id[node.state_id]
    if not k then return end
    k.op = op
    op.topic = k.input
    k.log = changelog.new { topic = k.topic, node = node, op = op, brokers = self.brokers,
      options = self.options, read_committed = self.transactional, timeout = TIMEOUT_MS }
  end)
end

-- The producer the changelog writes go through: an exactly_once sink's (so they are in
-- its transaction), else one of the group's own.
function group:changelog_producer()
  for _, s in ipairs(self.job:sinks()) do
    if s.transactional then return s.producer, true end
  end
  if not self.producer then
    self.producer = core.kafka_producer { what = format("--group %s changelog", self.name),
      brokers = self.brokers, options = self.options,
      on_failed = function(list)
        for _, f in ipairs(list) do
          self.lost = (self.lost or 0) + 1
          say("sluice: --group %s: a changelog write to %s failed: %s", self.name,
            tostring(f.topic), tostring(f.reason))
        end
      end,
      on_event = function() end,
      on_error = function(msg, fatal)
        if fatal then error(msg, 0) end
        say("sluice: %s", msg)
      end }
  end
  return self.producer, false
end

-- Queues `list` (changelog messages) on `producer`, waiting for room while its queue is
-- full.
local function produce_all(producer, list)
  local from = 1
  local deadline = host.clock() + FLUSH_MS / 1000
  while from <= #list do
    local stopped = producer:produce(list, from)
    if not stopped then return end
    from = stopped
    if host.clock() > deadline then
      error(format("%d changelog messages could not be queued within %d s", #list - from + 1,
        FLUSH_MS / 1000), 0)
    end
    producer:flush(100)
  end
end

-- Queues messages (a repartition writer's) on the producer the changelog goes through,
-- so that with exactly-once they are in the same transaction.
function group:produce(list)
  produce_all((self:changelog_producer()), list)
end

-- The commit: the tasks' changed state, outputs and offsets (see the top). `why` names
-- the occasion in errors. Raises when it could not commit.
function group:commit(why)
  local job = self.job
  local positions = job:positions()
  local read_to = {}            -- topic -> p -> next offset, over every source
  for _, at in pairs(positions) do
    if type(at) == "table" then
      for topic, parts in pairs(at) do
        if type(parts) == "table" then read_to[topic] = parts end
      end
    end
  end
  local list = {}
  for _, k in ipairs(self.keyed) do
    if k.op then
      local parts = read_to[k.input] or {}
      for _, p in ipairs(k.op.task_list()) do k.log.changes(p, list, parts[p]) end
    end
  end
  -- where each input partition held here is read up to, to NAME-offsets
  local marks, marked = {}, {}
  for topic, held in pairs(self.held) do
    local parts = read_to[topic] or {}
    for p in pairs(held) do
      local o, key = parts[p], topic .. ":" .. p
      if o and self.marked[key] ~= o then
        marks[#marks + 1] = { topic = self.offsets_topic, partition = 0, key = key,
          value = tostring(o) }
        marked[key] = o
      end
    end
  end
  local producer, transactional = self:changelog_producer()
  produce_all(producer, list)
  if transactional then
    produce_all(producer, marks)
    job:barrier(positions)          -- delivers it all, offsets into the transaction
    job:checkpointed(positions)     -- commits it
  else
    -- the state first, then where the input is read up to: a restore never finds an
    -- offset past the state it has
    if #marks > 0 and producer:flush(FLUSH_MS) == 0 and (self.lost or 0) == 0 then
      produce_all(producer, marks)
    end
    local left = producer:flush(FLUSH_MS)
    for _, s in ipairs(job:sinks()) do
      if s.producer and s.producer ~= producer then left = left + s.producer:flush(FLUSH_MS) end
    end
    if left > 0 then
      error(format("%d messages not delivered within %d s %s", left, FLUSH_MS / 1000, why), 0)
    end
    if (self.lost or 0) > 0 then
      error(format("%d changelog writes failed %s", self.lost, why), 0)
    end
    job:checkpointed(positions)     -- the offsets, to the group (for lag tools)
  end
  for key, o in pairs(marked) do self.marked[key] = o end
  self.stats.commits = self.stats.commits + 1
end

-- A commit that says why it failed, and counts it, rather than raising.
function group:try_commit(why)
  local ok, err = pcall(self.commit, self, why)
  if not ok then
    self.stats.failed = self.stats.failed + 1
    say("sluice: --group %s: commit %s: %s", self.name, why, tostring(err))
  end
end

-- "in:0,in:3": the partitions of `list`, for what a member says.
local function names(list)
  local t = {}
  for i, tp in ipairs(list) do t[i] = tp.topic .. ":" .. tp.partition end
  return table.concat(t, ",")
end

-- Partitions `list` ({topic, partition}...) are being assigned here: the keyed
-- operators that read them restore their tasks from the changelog, before a record of
-- them comes. Returns where each partition starts, { topic = { [p] = offset } }: where
-- the restored state goes up to (the group's committed offset may lag behind it). Says
-- so on stderr (as Kafka Streams logs its task assignments).
function group:assigning(list)
  if #list == 0 then return nil end
  local started = host.clock()
  local keys, bytes = 0, 0
  local starts = {}
  for _, k in ipairs(self.keyed) do
    local parts = {}
    for _, tp in ipairs(list) do
      if tp.topic == k.input then parts[#parts + 1] = tp.partition end
    end
    if #parts > 0 and k.log then
      local at, nkeys, nbytes = k.log.restore(parts)
      keys, bytes = keys + nkeys, bytes + nbytes
      starts[k.input] = starts[k.input] or {}
      for p, o in pairs(at) do
        -- two operators on one input: the earlier offset (no record skipped)
        local was = starts[k.input][p]
        if not was or o < was then starts[k.input][p] = o end
      end
    end
  end
  -- the others start where NAME-offsets says the last member that held them read them up
  -- to (the group's committed offsets can lag: a commit is refused while the group
  -- rebalances); a changelog's offset goes with its state, written in the same message,
  -- and NAME-offsets is written after it: where both say, the changelog's is the one
  local got, err = core.kafka_read_partition { brokers = self.brokers, options = self.options,
    topic = self.offsets_topic, partition = 0, read_committed = self.transactional,
    timeout = TIMEOUT_MS }
  if not got then
    error(format("--group %s: reading %s: %s", self.name, self.offsets_topic, tostring(err)), 0)
  end
  local last = {}
  for _, m in ipairs(got) do if m.key then last[m.key] = m.value end end
  for _, tp in ipairs(list) do
    local o = tonumber(last[tp.topic .. ":" .. tp.partition])
    starts[tp.topic] = starts[tp.topic] or {}
    if o and not starts[tp.topic][tp.partition] then starts[tp.topic][tp.partition] = o end
    self.held[tp.topic] = self.held[tp.topic] or {}
    self.held[tp.topic][tp.partition] = true
  end
  local ms = (host.clock() - started) * 1000
  local st = self.stats
  st.restores, st.restore_ms = st.restores + 1, st.restore_ms + ms
  say("sluice: --group %s: assigned %s%s", self.name, names(list), #self.keyed > 0 and
    format(" (restored %d keys, %d bytes of changelog, in %.0f ms)", keys, bytes, ms) or "")
  return starts
end

-- Partitions `list` are being revoked: what they hold is committed (the next owner
-- starts from it), then their state goes.
function group:revoked(list)
  if #list == 0 then return end
  self:try_commit("before giving partitions up")
  -- the offsets at once, not by the consumer's timer
  local positions = self.job:positions()
  for _, route in ipairs(self.job.sources) do
    local src = route.handle
    if src.consumer and positions[src.id] and not self.transactional then
      local mine = {}
      for _, tp in ipairs(list) do
        local at = positions[src.id][tp.topic] and positions[src.id][tp.topic][tp.partition]
        if at then
          mine[tp.topic] = mine[tp.topic] or {}
          mine[tp.topic][tp.partition] = at
        end
      end
      -- (for lag tools: the next owner goes by NAME-offsets, as a commit while the group
      -- rebalances may be refused)
      if next(mine) then src.consumer:commit(mine, true) end
    end
  end
  for _, k in ipairs(self.keyed) do
    for _, tp in ipairs(list) do
      if tp.topic == k.input and k.op then
        k.op.drop(tp.partition)
        k.log.forget(tp.partition)
      end
    end
  end
  for _, tp in ipairs(list) do
    tasks.forget(tp.topic, tp.partition)
    self.marked[tp.topic .. ":" .. tp.partition] = nil
    if self.held[tp.topic] then self.held[tp.topic][tp.partition] = nil end
    local reader = self.readers[tp.topic]
    if reader then reader.forget(tp.topic .. ":" .. tp.partition) end
  end
  say("sluice: --group %s: revoked %s (committed)", self.name, names(list))
end

-- Runs `job` (runtime.new with this controller as its `group`) as a member of the group:
-- commits every `every` ms, at each revoke and at the end. Returns true, or nil and why.
function group:run(job)
  self.job = job
  job:on("started", function()
    self.timer = core.timer(function() self:try_commit("on schedule") end)
    self.timer:start(self.every, self.every)
  end)
  job:on("revoked", function(list) self:revoked(list) end)
  job:on("input_ended", function(last)
    if last and not self.final then
      self.final = true
      if self.timer then self.timer:stop() end
      self:try_commit("at the end of input")
    end
  end)
  job:on("metrics", function()
    local st = self.stats
    return { operator = "(group " .. self.name .. ")", kind = "group", records_out = st.commits,
      errors = st.failed, restores = st.restores, restore_ms = st.restore_ms }
  end)
  local ok, err = job:run()
  if self.timer then self.timer:close() end
  if self.producer then self.producer:close() end
  return ok, err
end

return group
