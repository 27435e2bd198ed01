-- guard.lua -- which operator is running, for the messages of a hard exit (host/guard.c).
--
-- When the process must end from C -- a signal the loop does not come round to, because a
-- user function never returns, or the memory limit passed -- it names the operator it was
-- in. The runtime keeps that current per batch: guard.wrap makes a receiver's push and
-- finish enter its label (an FFI store of an id) and restore the one before on the way
-- out, so a nested push names the innermost operator and its return the outer one again.
local host = require "sluice.host"

local C = host.C
local enter, label = C.sl_guard_enter, C.sl_guard_label
local format = string.format

local guard = {}

-- "map at job.lua:3", 'filter "evens" at job.lua:4', "sink.file out.jsonl at job.lua:9".
local function name(node)
  local text = tostring(node.label or node.kind)
  if node.name then text = format("%s %q", text, node.name) end
  return format("%s at %s", text, tostring(node.where or "?"))
end

-- The label of a receiver running `nodes` (a fused stage: its operators in order, and
-- the generator fused into it first), registered with the host. Returns its id.
function guard.label(nodes)
  local parts = {}
  for i, node in ipairs(nodes) do parts[i] = name(node) end
  local text = table.concat(parts, ", ")
  if #parts > 1 then text = text .. " (one fused stage)" end
  return label(text)
end

-- Makes receiver r's push and finish run under label id (guard.label).
function guard.wrap(r, id)
  local push, finish = r.push, r.finish
  r.push = function(self, a, b, c, d, e, f)
    local was = enter(id)
    push(self, a, b, c, d, e, f)
    enter(was)
  end
  r.finish = function(self)
    local was = enter(id)
    finish(self)
    enter(was)
  end
end

return guard
