-- ordered.lua: the workers' streams put back into one worker's order by their labels,
-- against a model: every record in the order of (label, sending worker, as it was sent),
-- whatever order the senders' messages arrive in.
local ordered = require "sluice.ordered"

-- A merge of n senders whose inputs write what they get into `out`: { sender, record,
-- label } for a record, { sender, "wm", w, label } for a watermark, { sender, "end" }.
local function recorder(n, batched)
  local out, current = {}, nil
  local inputs = {}
  for i = 1, n do
    inputs[i] = {
      push = function(_, b, cnt, _, _, wend)
        for k = 1, cnt do out[#out + 1] = { i, b[k], current } end
        if wend then out[#out + 1] = { i, "wm", wend, current } end
      end,
      finish = function() out[#out + 1] = { i, "end" } end,
      idle = function() out[#out + 1] = { i, "idle" } end,
    }
  end
  local box = setmetatable({}, { __newindex = function(_, _, l) current = l end,
    __index = function() return current end })
  -- batched: records go on in batches of several senders' (stage.merge's push_mixed)
  local function push_mixed(b, cnt, _, _, from)
    for k = 1, cnt do out[#out + 1] = { from[k], b[k], current } end
  end
  local m = ordered.new(n, function(i) return inputs[i] end, box, batched, push_mixed)
  return m, out
end

-- A run of the model: labels 1..L, each taken by one sender (the worker that owns the
-- record worker 1 numbered L), which puts out 0 to 2 records labelled L; every 10th label
-- is a watermark every sender passes on (each its own records of it: ties). Each sender
-- then tells how far it has got. Returns each sender's messages in order, and what the
-- merge must put out.
local function model(n, L, seed)
  math.randomseed(seed)
  local msgs, want = {}, {}
  for i = 1, n do msgs[i] = {} end
  local id = 0
  for l = 1, L do
    local by = {}
    if l % 10 == 0 then
      for i = 1, n do by[i] = math.random(0, 1) end
    else
      by[math.random(1, n)] = math.random(0, 2)
    end
    for i = 1, n do
      for _ = 1, by[i] or 0 do
        id = id + 1
        table.insert(msgs[i], { "push", id, l })
        want[#want + 1] = { i = i, id = id, l = l }
      end
      if math.random() < 0.3 then table.insert(msgs[i], { "progress", l }) end
    end
  end
  for i = 1, n do table.insert(msgs[i], { "finish" }) end
  -- one worker's order: by label, then by sender, then as sent
  table.sort(want, function(x, y)
    if x.l ~= y.l then return x.l < y.l end
    if x.i ~= y.i then return x.i < y.i end
    return x.id < y.id
  end)
  return msgs, want
end

-- Delivers each sender's messages in its order, the senders interleaved at random.
local function deliver(m, msgs, seed)
  math.randomseed(seed)
  local at = {}
  for i = 1, #msgs do at[i] = 1 end
  while true do
    local open = {}
    for i = 1, #msgs do if at[i] <= #msgs[i] then open[#open + 1] = i end end
    if #open == 0 then break end
    local i = open[math.random(1, #open)]
    local msg = msgs[i][at[i]]
    at[i] = at[i] + 1
    if msg[1] == "push" then m.push(i, { msg[2] }, 1, { 0 }, { 0 }, nil, { msg[3] })
    elseif msg[1] == "progress" then m.progress(i, msg[2])
    else m.finish(i) end
  end
end

describe("ordered merge", function()
  for _, n in ipairs({ 2, 3, 5 }) do
    it(n .. " senders: every record in label order, ties by sender, whatever the arrival " ..
      "(one at a time, and in batches)", function()
      for seed = 1, 40 do
        local msgs, want = model(n, 300, seed)
        local m, out = recorder(n, seed % 2 == 0)
        deliver(m, msgs, seed * 7)
        local got, ends = {}, 0
        for _, o in ipairs(out) do
          if o[2] == "end" then ends = ends + 1
          else got[#got + 1] = { i = o[1], id = o[2], l = o[3] } end
        end
        if seed % 2 == 0 then
          -- (in a batch, the label is the batch's last: compare the records' order)
          for _, x in ipairs(want) do x.l = nil end
          for _, x in ipairs(got) do x.l = nil end
        end
        assert.same(want, got, "seed " .. seed)
        assert.equal(n, ends)
        assert.equal(0, m.held)
      end
    end)
  end

  it("holds a record until every other sender is past its label, or has a later one", function()
    local m, out = recorder(3)
    m.push(2, { "b5" }, 1, nil, nil, nil, nil, 5)
    assert.same({}, out)
    m.progress(1, 5)
    assert.same({}, out, "sender 3 could still send something labelled 5 or less")
    m.progress(3, 4)
    -- 3 sends after 2 on a tie: past 4 is enough
    assert.same({ { 2, "b5", 5 } }, out)
    m.push(3, { "c5" }, 1, nil, nil, nil, nil, 5)
    m.push(1, { "a6" }, 1, nil, nil, nil, nil, 6)
    assert.same({ { 2, "b5", 5 } }, out, "sender 2 could still send something labelled 5")
    m.push(2, { "b7" }, 1, nil, nil, nil, nil, 7)
    assert.same({ { 2, "b5", 5 }, { 3, "c5", 5 } }, out, "sender 3 could still send a 6")
    m.progress(3, 6)
    assert.same({ { 2, "b5", 5 }, { 3, "c5", 5 }, { 1, "a6", 6 } }, out)
    assert.equal(1, m.held)
    m.progress(2, 7)
    assert.equal(5, m.frontier())
  end)

  it("a watermark waits its turn; an end goes once its sender's records have; idleness at once",
    function()
      local m, out = recorder(2)
      m.push(1, {}, 0, {}, {}, 1000, nil, 3)
      m.idle(2)
      assert.same({ { 2, "idle" } }, out)
      m.finish(2)
      assert.same({ { 2, "idle" }, { 2, "end" }, { 1, "wm", 1000, 3 } }, out)
      assert.equal(0, m.frontier(), "sender 1 has told nothing")
    end)

  it("drain hands on all it holds, in label order as far as it goes", function()
    local m, out = recorder(2)
    m.push(1, { "a9" }, 1, nil, nil, nil, nil, 9)
    m.push(2, { "b10" }, 1, nil, nil, nil, nil, 10)
    m.push(2, { "b12" }, 1, nil, nil, nil, nil, 12)
    m.finish(2)
    assert.same({ { 1, "a9", 9 } }, out, "sender 1 could still send a 10")
    assert.equal(2, m.held)
    m.drain()
    assert.same({ { 1, "a9", 9 }, { 2, "b10", 10 }, { 2, "b12", 12 }, { 2, "end" } }, out)
    assert.equal(0, m.held)
  end)
end)
