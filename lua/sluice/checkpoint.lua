-- checkpoint.lua -- a job's state on disk (--state-dir, --checkpoint-every), and the
-- restart from it after a crash.
--
-- Every interval the job takes a consistent checkpoint between two loop callbacks: the file
-- sinks are flushed and their lengths noted, then a forked child (core.child) snapshots the
-- operators and source positions as they were at fork(), fsyncs the sink files, writes the
-- checkpoint with core.durable.replace (tmp file, fsync, rename, fsync of the directory) and
-- removes all but the last two. The job only pauses for the flush and the fork. At start,
-- the newest readable checkpoint is restored: sinks are cut back to their committed length
-- and sources seek to their positions, so output files hold every record exactly once.
-- A job whose input ended by itself marks its last checkpoint finished; run again with
-- input that has not grown, it does nothing and leaves every file as it is.
local host = require "sluice.host"
local report = require "sluice.report"
local kafka = require "sluice.kafka"
local graph = require "sluice.graph"
local source = require "sluice.source"
local runtime = require "sluice.runtime"
local snapshot_check = require "sluice.snapshot_check"

local core = host.core
local durable, child = core.durable, core.child
local bit = require "bit"
local format, byte, char = string.format, string.byte, string.char

local checkpoint = {}

-- The layout of a checkpoint file; a reader of another FORMAT refuses the state dir.
checkpoint.FORMAT = 1
local MAGIC = "SLUICECP"
local NAME = "checkpoint-%08d.ckpt"
local KEEP = 2                          -- checkpoints kept on disk
local SNAPSHOT = 1                      -- the version of the state inside (Job:snapshot)

local say = report.say

-- ---- the file format ------------------------------------------------------------------
--
--   "SLUICECP"  u32 format  u8 n  sluice version (n bytes)  u32 crc32 of the four before
--   u32 body length  u32 crc32 of the body  body = msgpack of the snapshot
-- All integers big-endian. The header's own checksum tells a torn or scribbled header from
-- one written by another version of sluice.

local function u32(n)
  return char(bit.band(bit.rshift(n, 24), 255), bit.band(bit.rshift(n, 16), 255),
    bit.band(bit.rshift(n, 8), 255), bit.band(n, 255))
end

local function read_u32(s, i)
  local a, b, c, d = byte(s, i, i + 3)
  if not d then return nil end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- The bytes of a checkpoint file holding snap.
function checkpoint.encode(snap)
  local body = durable.encode(snap)
  local v = host.version
  local head = u32(checkpoint.FORMAT) .. char(#v) .. v
  return MAGIC .. head .. u32(durable.crc32(head)) .. u32(#body) .. u32(durable.crc32(body)) .. body
end

-- Reads checkpoint bytes. Returns snap; or nil and why it is unreadable (torn, corrupt);
-- or nil, why, and the {format=, version=} of an incompatible writer.
function checkpoint.decode(bytes)
  if #bytes < 13 or bytes:sub(1, 8) ~= MAGIC then
    return nil, "not a sluice checkpoint (no SLUICECP header)"
  end
  local n = byte(bytes, 13)
  local head = bytes:sub(9, 13 + n)
  local head_crc = read_u32(bytes, 14 + n)
  if not head_crc then return nil, format("torn: %d bytes, the header is cut short", #bytes) end
  if head_crc ~= durable.crc32(head) then return nil, "corrupt: header checksum mismatch" end
  local fmt, version = read_u32(bytes, 9), bytes:sub(14, 13 + n)
  if fmt ~= checkpoint.FORMAT then
    return nil, "incompatible", { format = fmt, version = version }
  end
  local len, crc = read_u32(bytes, 18 + n), read_u32(bytes, 22 + n)
  if not crc then return nil, format("torn: %d bytes, the header is cut short", #bytes) end
  local body = bytes:sub(26 + n)
  if #body < len then return nil, format("torn: %d of its %d bytes of state", #body, len) end
  if #body > len then return nil, format("corrupt: %d bytes after its state", #body - len) end
  if durable.crc32(body) ~= crc then return nil, "corrupt: checksum mismatch" end
  local ok, snap = pcall(core.msgpack_decode, body)
  if not ok or type(snap) ~= "table" then return nil, "corrupt: " .. tostring(snap) end
  -- a snapshot without a version number was not written by any sluice: not usable; one
  -- with another version is another sluice's
  if type(snap.version) ~= "number" then
    return nil, "not usable: its state has no version number"
  end
  if snap.version ~= SNAPSHOT then
    return nil, "incompatible", { format = fmt, version = version, snapshot = snap.version }
  end
  return snap
end

-- ---- the state directory ---------------------------------------------------------------

-- Checkpoint files in dir, newest first: { {seq=, path=}, ... }.
local function list(dir)
  local names, err = durable.list(dir)
  if not names then return nil, err end
  local found = {}
  for _, name in ipairs(names) do
    local seq = name:match("^checkpoint%-(%d+)%.ckpt$")
    if seq then found[#found + 1] = { seq = tonumber(seq), path = dir .. "/" .. name } end
    if name:match("%.ckpt%.tmp$") then durable.remove(dir .. "/" .. name) end
  end
  table.sort(found, function(a, b) return a.seq > b.seq end)
  return found
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- Whether the transaction that checkpoint `snap` committed with did commit: the groups it
-- sent the sources' offsets to hold exactly the checkpoint's offsets. A checkpoint of a
-- job without transactional sinks is always good. Returns true; or false and why; or nil
-- and why when the brokers cannot tell.
local function transaction_committed(snap)
  for _, t in ipairs(snap.transactions or {}) do
    local want = snap.sources and snap.sources[t.source]
    if want and next(want) then
      local got, err = kafka.committed(t.brokers, t.group, t.options, want,
        t.transactional_ids)
      if not got then
        return nil, format("cannot learn from the brokers whether its transaction " ..
          "committed (group %s: %s)", t.group, tostring(err))
      end
      for topic, parts in pairs(want) do
        for p, offset in pairs(parts) do
          local c = got[topic] and got[topic][p]
          if c ~= offset then
            return false, format("its transaction did not commit (group %s holds offset " ..
              "%s of %s:%d, the checkpoint %d)", t.group, tostring(c), topic, p, offset)
          end
        end
      end
    end
  end
  return true
end

-- The newest usable checkpoint in dir: snap and the highest sequence number seen (so
-- new checkpoints sort after the unusable ones too). A torn or corrupt one is reported
-- and skipped, and so is one that usable(snap) finds fault with (it returns why:
-- snapshot_check.usable against the job), and one whose Kafka transaction did not commit
-- (a crash between the checkpoint and its commit: the one before it did commit). Returns
-- nil, message when the newest is from an incompatible sluice, or the brokers cannot say
-- about a transaction.
function checkpoint.load(dir, usable)
  local files, err = list(dir)
  if not files then return nil, err end
  local top = files[1] and files[1].seq or 0
  for _, f in ipairs(files) do
    local bytes, rerr = read_file(f.path)
    local snap, why, other
    if bytes then snap, why, other = checkpoint.decode(bytes) else why = rerr end
    if snap then
      why = usable and usable(snap)
      if why then snap, why = nil, "not usable: " .. why end
    end
    if snap then
      local committed, terr = transaction_committed(snap)
      if committed then return { snap = snap, seq = top, path = f.path } end
      if committed == nil then
        return nil, format("state dir %s: checkpoint %s: %s", dir, f.path, terr), 1
      end
      why = terr
    end
    if other then
      local state = other.snapshot and format(", state version %s", tostring(other.snapshot)) or ""
      return nil, format("state dir %s: checkpoint %s was written by sluice %s (checkpoint " ..
        "format %d%s); this sluice %s reads format %d%s. Use a new --state-dir, or run the " ..
        "sluice that wrote it.", dir, f.path, other.version ~= "" and other.version or "?",
        other.format, state, host.version, checkpoint.FORMAT,
        other.snapshot and format(", state version %d", SNAPSHOT) or "")
    end
    if why then say("sluice: state dir %s: skipping checkpoint %s: %s", dir, f.path, why) end
  end
  return { seq = top }
end

-- Takes the state dir's lock, waiting a little for a killed job's checkpoint child to die.
local function lock(dir)
  local path = dir .. "/lock"
  for _ = 1, 20 do
    local ok, err = durable.lock(path)
    if ok then return true end
    if ok == nil then return nil, err end
    os.execute("sleep 0.1")
  end
  return nil, format("state dir %s is in use by another running job (it holds %s)", dir, path)
end

-- ---- taking checkpoints ------------------------------------------------------------------

local Checkpointer = {}
Checkpointer.__index = Checkpointer

-- Flushes every file sink of `job` and returns { [path] = committed length }.
local function commit_sinks(job)
  local lengths = {}
  for _, s in ipairs(job:sinks()) do
    if s.commit then lengths[s.path] = s.commit() end
  end
  return lengths
end

-- Writes checkpoint seq of the job as it stands (in the child, or at the end of input):
-- the sinks' data reaches the disk before the checkpoint that commits it. Raises on failure.
function Checkpointer:write(seq, lengths)
  local snap = self.cut_snapshot or self.job:snapshot()
  snap.sinks, snap.seq, snap.time = lengths, seq, host.now_ms()
  for path in pairs(lengths) do assert(durable.sync(path)) end
  local bytes = checkpoint.encode(snap)
  assert(durable.replace(self.dir .. "/" .. format(NAME, seq), bytes))
  local files = assert(list(self.dir))
  for i = KEEP + 1, #files do assert(durable.remove(files[i].path)) end
  return bytes
end

-- A checkpoint is durable, `seconds` after it began (its cut, until its file is on disk):
-- its duration, the longest so far, and when (for its age) go into the stats.
local function note_done(stats, seconds)
  stats.duration_ms = seconds * 1000
  if stats.duration_ms > stats.max_duration_ms then stats.max_duration_ms = stats.duration_ms end
  stats.done_at = host.clock()
end

-- Waits for the checkpoint child: blocking, or polled from the reaper timer.
function Checkpointer:reap(block)
  if not self.pid then return end
  local status = child.wait(self.pid, block)
  if status == nil then
    if self.heap_limit and collectgarbage("count") > self.heap_limit then
      self.heap_limit = nil
      collectgarbage("restart")
      if self.log then
        say("sluice: checkpoint %d: the heap doubled while it was written; collecting again",
          self.child_seq)
      end
    end
    return
  end
  self.pid = nil
  if self.heap_limit then
    self.heap_limit = nil
    collectgarbage("restart")
    -- What piled up while the collector waited is collected now (no child's pages to
    -- copy any more): else the next checkpoint's limit, twice the heap at its fork, would
    -- count that garbage as live, and frequent checkpoints would ratchet the heap up.
    if collectgarbage("count") > self.child_heap * 1.25 + 16384 then collectgarbage() end
  end
  if self.reaper then self.reaper:stop() end
  local stats = self.stats
  if status ~= 0 then
    stats.failed = stats.failed + 1
    say("sluice: checkpoint %d failed (its process exited with status %d); the job goes on from " ..
      "checkpoint %s", self.child_seq, status, stats.last_seq or "none")
    self.job:checkpoint_failed()
    return
  end
  stats.taken = stats.taken + 1
  stats.last_seq = self.child_seq
  note_done(stats, host.clock() - self.child_started)
  -- durable: transactional sinks commit, Kafka sources tell their group (a commit that
  -- fails raises here and stops the job: a restart goes back to the checkpoint before)
  self.job:checkpointed(self.child_positions)
  if self.log then
    local st = durable.stat(self.dir .. "/" .. format(NAME, self.child_seq))
    say("sluice: checkpoint %d: the job paused %.1f ms (fork %.1f ms, Lua heap %.0f MB); " ..
      "written in the background in %.0f ms, %d bytes", self.child_seq, self.child_stall * 1000,
      self.child_fork * 1000, self.child_heap / 1024, (host.clock() - self.child_started) * 1000,
      st and st.size or -1)
  end
end

-- The sources' positions at a cut: worker 1's, and of a source every worker reads
-- (source.spread), its shares' put together.
local function merged_positions(job, parts)
  local sources = {}
  for id, pos in pairs(parts[1].sources or {}) do sources[id] = pos end
  for _, src in ipairs(job.sources) do
    if src.spec and source.spread(src.spec) and sources[src.id] ~= nil then
      local shares = {}
      for w = 1, #parts do shares[w] = (parts[w].sources or {})[src.id] end
      sources[src.id] = source.merge_positions(src.spec, shares)
    end
  end
  return sources
end

-- On several workers: the state of every worker at one cut (exchange.lua), every source
-- paused until the checkpoint has forked. The checkpoint holds each worker's part, and
-- worker 1's source positions, which are all the sources that have positions.
function Checkpointer:take_cut()
  local job, team = self.job, self.job.team
  if self.pid or team.cutting then return end
  local started = host.clock()
  team:cut(function() return job:snapshot() end, function(parts)
    local own = parts[1]
    self.cut_snapshot = { version = own.version, workers = team.n, parts = parts, operators = {},
      sources = merged_positions(job, parts), transactions = own.transactions }
    self:take(started)
    self.cut_snapshot = nil
    team:resume()
  end)
end

-- A checkpoint in the background: flush the sinks, fork, and let the child write it.
function Checkpointer:take(cut_started)
  if self.pid then return end                 -- one at a time: the last one is still going
  local job = self.job
  if job.team and not self.cut_snapshot then return self:take_cut() end
  local started = cut_started or host.clock()
  -- (at a cut, every worker's: a source every worker reads has each one's share)
  local positions = self.cut_snapshot and self.cut_snapshot.sources or job:positions()
  local ok, lengths = pcall(function()
    local l = commit_sinks(job)
    job:barrier(positions)
    return l
  end)
  if not ok then
    self.stats.failed = self.stats.failed + 1
    return say("sluice: checkpoint not taken: %s", tostring(lengths))
  end
  self.seq = self.seq + 1
  local seq = self.seq
  local forking = host.clock()
  local pid, err = child.fork()
  if pid == 0 then
    local wrote, werr = pcall(self.write, self, seq, lengths)
    if not wrote then
      say("sluice: checkpoint %d in %s: %s", seq, self.dir, tostring(werr))
      io.stderr:flush()
      child.exit(1)
    end
    child.exit(0)
  end
  local forked = host.clock()
  local stall = forked - started
  self.stats.stall_ms = stall * 1000
  if stall * 1000 > self.stats.max_stall_ms then self.stats.max_stall_ms = stall * 1000 end
  if not pid then
    self.stats.failed = self.stats.failed + 1
    job:checkpoint_failed()
    return say("sluice: checkpoint %d not taken: %s", seq, err)
  end
  self.pid, self.child_seq, self.child_started, self.child_stall = pid, seq, started, stall
  self.child_positions = positions
  self.child_fork = forked - forking
  -- While the child runs, each page the parent writes is copied first, and a garbage
  -- collection writes to every live object: with 1 M keys one traversal of the state
  -- costs seconds of page copies. So the collector waits for the child, unless the heap
  -- grows past twice its size at the fork (plus 64 MB) before the child is done.
  self.child_heap = collectgarbage("count")
  self.heap_limit = self.child_heap * 2 + 65536
  collectgarbage("stop")
  self.reaper:start(10, 10)
end

-- A checkpoint written here and now (end of input, a shutdown): after the one in flight.
-- Its state, encoded, is kept for the checkpoint that marks the job finished (finish()).
function Checkpointer:take_now()
  self:reap(true)
  local started = host.clock()
  local ok, err = pcall(function()
    local job = self.job
    local lengths = commit_sinks(job)
    local positions = job:positions()
    job:barrier(positions)
    self.seq = self.seq + 1
    local bytes = self:write(self.seq, lengths)
    self.last_bytes = bytes
    job:checkpointed(positions)
    self.stats.taken = self.stats.taken + 1
    self.stats.last_seq = self.seq
    note_done(self.stats, host.clock() - started)
    if self.log then
      say("sluice: checkpoint %d: at the end of input, written by the job itself in %.0f ms, " ..
        "%d bytes", self.seq, (host.clock() - started) * 1000, #bytes)
    end
  end)
  if not ok then
    self.stats.failed = self.stats.failed + 1
    say("sluice: checkpoint %d in %s: %s", self.seq, self.dir, tostring(err))
  end
end

-- The job's input ended by itself and all it fired is in the sink files: the checkpoint
-- taken at that end is written again, marked finished. A rerun finds it and, when its
-- input has not grown, leaves every file alone (checkpoint.load); when it has, it
-- restores that state and goes on as one run over the whole input would have.
function Checkpointer:finish()
  local snap = assert(checkpoint.decode(self.last_bytes))
  snap.finished = true
  for path in pairs(snap.sinks or {}) do assert(durable.sync(path)) end
  self.seq = self.seq + 1
  snap.seq = self.seq
  assert(durable.replace(self.dir .. "/" .. format(NAME, self.seq), checkpoint.encode(snap)))
  local files = assert(list(self.dir))
  for i = KEEP + 1, #files do assert(durable.remove(files[i].path)) end
end

-- Whether the job of `set` has input a finished checkpoint `snap` has not seen: a source
-- it has no position for (new in the script), or one that says it has more past its
-- position (a file that grew or was replaced, a higher count); a source that cannot tell
-- (stdin, sockets, Kafka) counts as having more.
local function input_grown(set, snap)
  local nodes = graph.ordered(set)
  runtime.assign_ids(nodes)
  for _, node in ipairs(nodes) do
    if node.kind == "source" then
      local pos = snap.sources[node.state_id]
      if pos == nil or source.more(node.spec, pos) ~= false then return true end
    end
  end
  return false
end

-- Whether the job of `set` finished at the checkpoint it would resume from, and its input
-- has not grown since: then there is nothing to do. Says so, and returns true.
function Checkpointer:finished_already(set)
  local restored = self.restored
  if restored and restored.snap.finished and not input_grown(set, restored.snap) then
    say("sluice: state dir %s: the job finished at checkpoint %s and its input has not " ..
      "grown since; nothing to do (its output stays as it is)", self.dir, restored.path)
    return true
  end
  return false
end

-- Runs `job` (runtime.new) like job:run(), checkpointing into the state dir and starting
-- from its newest checkpoint. Returns true, or nil and a message.
function Checkpointer:run(job)
  self.job = job
  local restored = self.restored
  if self:finished_already(job.set) then return true end
  if restored then say("sluice: resuming from checkpoint %s", restored.path) end
  -- ids in the checkpoint that this script has no operator for: their state is dropped
  job:on("restored", function(unknown, other)
    for _, id in ipairs(unknown) do
      say("sluice: state dir %s: checkpoint %s has state for operator %q, which this script " ..
        "does not have; that state is dropped", self.dir, restored.path, id)
    end
    for _, o in ipairs(other or {}) do
      say("sluice: state dir %s: checkpoint %s has state of kind %q for operator %q, which " ..
        "is of kind %q in this script; that state is dropped", self.dir, restored.path, o.was,
        o.id, o.now)
    end
  end)
  job:on("started", function()
    self.timer = core.timer(function() self:take() end)
    self.timer:start(self.every, self.every)
    self.reaper = core.timer(function() self:reap(false) end)
  end)
  -- The last checkpoint is taken before an end of input fires any window: a restart
  -- continues from there and writes those results once. At a shutdown (`last` then) that
  -- is the first source to end, and no periodic one follows: it would hold the operators of
  -- that source after its end (a watermark at +inf), with the others still running.
  -- Otherwise it is the last bounded source to end; one that ends before the others is
  -- just a source that reads no more, and periodic checkpoints go on.
  job:on("input_ended", function(last)
    -- on several workers no checkpoint is taken at the end of input (a cut is not taken
    -- inside a source's end): a restart goes on from the last periodic one
    if self.final_taken or job.team then return end
    if last then
      self.final_taken = true
      self.timer:stop()
      self:take_now()
    end
  end)
  -- job:metrics() and sluice top: one row for the checkpoints
  job:on("metrics", function()
    local st = self.stats
    return { operator = "(checkpoints)", kind = "checkpoint", records_out = st.taken,
      errors = st.failed, last = st.last_seq, pause_ms = st.stall_ms,
      max_pause_ms = st.max_stall_ms, writing = self.pid ~= nil, duration_ms = st.duration_ms,
      max_duration_ms = st.max_duration_ms,
      age_s = st.done_at and math.floor((host.clock() - st.done_at) * 10 + 0.5) / 10 }
  end)
  local ok, err = job:run(restored and restored.snap)
  if self.timer then self.timer:close() end
  self:reap(true)
  if self.reaper then self.reaper:close() end
  -- ended by its input (not a signal, a closed stdout or a failure): finished
  if ok and self.last_bytes and not job.stopping and not job.output_closed then
    local marked, merr = pcall(self.finish, self)
    if not marked then
      say("sluice: checkpoint %d in %s: %s", self.seq, self.dir, tostring(merr))
    end
  end
  return ok, err
end

-- Opens (making it if need be) the state dir and reads its newest checkpoint that the job
-- of the nodes `set` can use (snapshot_check). Returns the job's checkpointer; or nil,
-- message, exit status (2: a checkpoint from an incompatible sluice; 1: the directory
-- cannot be used).
function checkpoint.open(dir, every_ms, set)
  dir = dir:gsub("/+$", "")
  if dir == "" then dir = "/" end
  local ok, err = durable.mkdir(dir)
  if not ok then return nil, format("state dir: %s", err), 1 end
  ok, err = lock(dir)
  if not ok then return nil, err, 1 end
  local found, lerr, lstatus = checkpoint.load(dir, function(snap)
    return snapshot_check.usable(set, snap)
  end)
  if not found then return nil, lerr, lstatus or 2 end
  local self = setmetatable({ dir = dir, every = every_ms, seq = found.seq,
    restored = found.snap and found or nil, log = os.getenv("SLUICE_CHECKPOINT_LOG") ~= nil,
    stats = { taken = 0, failed = 0, stall_ms = 0, max_stall_ms = 0,
      max_duration_ms = 0 } }, Checkpointer)
  return self
end

return checkpoint
