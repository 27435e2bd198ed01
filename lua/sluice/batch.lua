-- batch.lua -- batch(n, d) on any stream: the records as arrays of up to n, an operator as
-- operator.lua describes it.
--
-- Per key on a keyed stream, for the whole stream otherwise (key_of gives every record the
-- key true). A key's open batch goes out when it holds n records, or, with d, once d of
-- processing time has passed since its first record came (checked on the shell's
-- early() timer, which stream.lua sets to a tenth of d), and at the end of input.
local host = require "sluice.host"
local keyed = require "sluice.keyed"

local pairs, ipairs, huge, sort = pairs, ipairs, math.huge, table.sort
local key_of, merged_wm = keyed.key_of, keyed.merged_wm

local batch = {}

local function clock_ms() return host.clock() * 1000 end

-- What goes out is the array itself (the operator keeps no reference to it), with the
-- event time of its last record (nil on a stream without). Open batches are numbered in
-- the order they opened: the end of input sends what is left in that order.
function batch.new(node, out)
  local n, wait = node.n, node.max_wait
  local key = key_of(node)
  local open, last_t, serial = {}, {}, {}   -- key -> open batch, its last time, its number
  local nopen, next_serial = 0, 0
  -- with d: the batches in the order they opened (so by deadline), as parallel arrays
  -- from qh to qt; an entry whose batch went out by count is skipped when it comes up
  local q_key, q_serial, q_at = {}, {}, {}
  local qh, qt = 1, 0
  local op = { wm = -huge, next_due = huge }

  local function send(k)
    local b, t = open[k], last_t[k]
    open[k], last_t[k], serial[k] = nil, nil, nil
    nopen = nopen - 1
    out(1, b, t)
  end

  local function opened(k, at)
    next_serial = next_serial + 1
    serial[k] = next_serial
    nopen = nopen + 1
    if wait then
      qt = qt + 1
      q_key[qt], q_serial[qt], q_at[qt] = k, next_serial, at
    end
  end

  function op.step(r, t)
    local k = key(r)
    local b = open[k]
    if b == nil then
      b = {}
      open[k] = b
      opened(k, wait and clock_ms())
    end
    local m = #b + 1
    b[m] = r
    last_t[k] = t
    if m >= n then send(k) end
  end

  -- Sends the batches whose d has passed, oldest first.
  function op.early()
    local now = clock_ms()
    while qh <= qt do
      local k = q_key[qh]
      if serial[k] == q_serial[qh] then
        if q_at[qh] + wait > now then break end
        send(k)
      end
      q_key[qh], q_serial[qh], q_at[qh] = nil, nil, nil
      qh = qh + 1
    end
    if qh > qt then qh, qt = 1, 0 end
  end

  -- The keys with an open batch, oldest batch first.
  local function open_keys()
    local list = {}
    for k in pairs(open) do list[#list + 1] = k end
    sort(list, function(a, b) return serial[a] < serial[b] end)
    return list
  end

  -- Only the end of input sends anything: a batch waits for records or for time.
  function op.advance(wm)
    op.wm = wm
    if wm == huge then
      for _, k in ipairs(open_keys()) do send(k) end
      q_key, q_serial, q_at, qh, qt = {}, {}, {}, 1, 0
    end
  end

  -- { {key, records, time of the last}, ... }, oldest batch first. A restored batch waits
  -- d from the restore (when its first record came is of another process's clock).
  function op.snapshot()
    local list = {}
    for i, k in ipairs(open_keys()) do list[i] = { k, open[k], last_t[k] } end
    return { wm = op.wm, open = list }
  end

  -- Batches of several snapshots are numbered in the order they are restored: the end
  -- of input sends a snapshot's before the next one's, each snapshot's oldest first.
  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    local now = wait and clock_ms()
    for _, e in ipairs(snap.open) do
      local k = e[1]
      if keep == nil or keep(k) then
        if open[k] == nil then opened(k, now) end
        open[k], last_t[k] = e[2], e[3]
      end
    end
  end

  function op.inspect(k)
    local b = open[k]
    if b == nil then return nil end
    local copy = {}
    for i = 1, #b do copy[i] = b[i] end
    return copy
  end

  op.keys = open_keys

  function op.live_keys() return nopen end

  return op
end

return batch
