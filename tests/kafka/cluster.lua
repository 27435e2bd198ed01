-- tests/kafka/cluster.lua -- a Kafka cluster for specs: librdkafka's mock brokers
-- (build/kafka_mock, from tests/kafka/mock_cluster.c, built by `make test`) on a free
-- loopback port, and kcat (Debian package kcat) as an independent client.
--
--   local cluster = require "tests.kafka.cluster"
--   local k = cluster.start { "in:3", "out:2" }   -- topics with their partitions
--   k.bootstrap                                   -- "127.0.0.1:PORT"
--   k:produce("in", { "line", ... }, { key = "k" })   k:consume("out") -> { messages }
--   k:down() / k:up()   every broker down or back;  k:stop()
--   cluster.each(list, "value")                  -- one field of each message, in order
local h = require "tests.helpers"

local cluster = {}
local Cluster = {}
Cluster.__index = Cluster

local MOCK = "build/kafka_mock"

-- Starts a mock cluster with `topics` ("name:partitions"); waits for its address.
-- opts.brokers: how many (1); opts.missing: topic names the brokers say do not exist
-- (others are created when a client asks, as auto.create.topics.enable does).
function cluster.start(topics, opts)
  opts = opts or {}
  assert(h.exists(MOCK), MOCK .. " is missing: make kafka-mock builds it")
  local dir = h.tmpdir()
  local addr, log = h.path(dir, "bootstrap"), h.path(dir, "log")
  local args = {}
  for i, t in ipairs(topics) do args[i] = h.q(t) end
  for _, name in ipairs(opts.missing or {}) do
    table.insert(args, 1, "--missing " .. h.q(name))
  end
  local cmd = string.format("%s --brokers %d %s >%s 2>%s & echo $!", MOCK, opts.brokers or 1,
    table.concat(args, " "), h.q(addr), h.q(log))
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("*l"))
  p:close()
  local bootstrap
  h.wait_until("the mock cluster's address", function()
    bootstrap = (h.read(addr) or ""):match("^(%S+)\n")
    return bootstrap ~= nil
  end)
  return setmetatable({ pid = pid, bootstrap = bootstrap, dir = dir, log = log }, Cluster)
end

local function signal(self, sig)
  os.execute(string.format("kill -%s %d 2>/dev/null", sig, self.pid))
end

function Cluster:down() signal(self, "USR1") end
function Cluster:up() signal(self, "USR2") end

function Cluster:stop()
  signal(self, "TERM")
  os.execute(string.format("while kill -0 %d 2>/dev/null; do sleep 0.05; done", self.pid))
end

-- Produces each string of `values` as a message of `topic` with kcat. opts.keys: an array
-- of keys (values[i] gets keys[i]); opts.partition: that partition only.
function Cluster:produce(topic, values, opts)
  opts = opts or {}
  local path = h.path(self.dir, "produce-" .. topic)
  local lines = {}
  for i, v in ipairs(values) do
    assert(not v:find("[\n\t]"), "a message for kcat may hold no newline or tab")
    lines[i] = opts.keys and (opts.keys[i] .. "\t" .. v) or v
  end
  h.write(path, table.concat(lines, "\n") .. "\n")
  local cmd = string.format("kcat -P -b %s -t %s %s %s -l %s 2>&1", self.bootstrap, h.q(topic),
    opts.keys and "-K '\t'" or "", opts.partition and ("-p " .. opts.partition) or "", h.q(path))
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  local ok = p:close()
  assert(ok, "kcat produce failed: " .. out)
end

-- Consumes `topic` from the start to its end with kcat. Returns an array of
-- { partition =, offset =, key =, value = }. opts.committed: read_committed isolation
-- (what a transactional consumer sees).
function Cluster:consume(topic, opts)
  opts = opts or {}
  local cmd = string.format("kcat -C -b %s -t %s -o beginning -e -q %s -f '%%p\\t%%o\\t%%k\\t%%s\\n' 2>&1",
    self.bootstrap, h.q(topic), opts.committed and "-X isolation.level=read_committed" or "")
  local p = assert(io.popen(cmd))
  local list = {}
  for line in p:lines() do
    local part, off, key, value = line:match("^(%d+)\t(%d+)\t([^\t]*)\t(.*)$")
    if part then
      list[#list + 1] = { partition = tonumber(part), offset = tonumber(off), key = key,
        value = value }
    end
  end
  p:close()
  return list
end

-- The `field` of each message of list (what consume or a read gives), in order.
function cluster.each(list, field)
  local out = {}
  for i, m in ipairs(list) do out[i] = m[field] end
  return out
end

return cluster
