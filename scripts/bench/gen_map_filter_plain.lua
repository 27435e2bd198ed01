-- Baseline for gen_map_filter.lua: the same work as a plain LuaJIT loop over batches of
-- 1024, written by hand (run with luajit, not sluice).
local N = tonumber(os.getenv("N")) or 20000000
local B = 1024
local gen = function(i) return { id = i, v = i % 100 } end
local map = function(r) r.v = r.v * 2; return r end
local filter = function(r) return r.v > 50 end
local batch, out, kept = {}, {}, 0  -- luacheck: ignore 241 (out holds the kept records, as a sink would)
local i = 1
while i <= N do
  local n = math.min(B, N - i + 1)
  for k = 1, n do batch[k] = gen(i + k - 1) end
  local m = 0
  for k = 1, n do
    local r = map(batch[k])
    if r ~= nil and filter(r) then m = m + 1; out[m] = r end
  end
  kept = kept + m
  i = i + n
end
io.stderr:write(kept, " kept\n")
