-- canon.lua -- sluice's JSON output (env IN) as canonical lines, like the C baselines'
-- -p output: nested fields flattened ("bid.price"), sorted by name, "name=value", numbers
-- as integers or %.17g. Used by scripts/bench/nexmark.sh to check that both agree.
local sl = require "sluice"
local ffi = require "ffi"

-- %.17g by the C library, as the baselines print it: LuaJIT's string.format rounds a
-- number exactly halfway at the 17th digit up, where C rounds it to even.
pcall(ffi.cdef, "int snprintf(char *s, size_t n, const char *format, ...);")  -- unless declared
local buf = ffi.new("char[64]")
local function g17(v)
  ffi.C.snprintf(buf, 64, "%.17g", ffi.cast("double", v))
  return ffi.string(buf)
end

local function flatten(t, prefix, into)
  for k, v in pairs(t) do
    if type(v) == "table" then flatten(v, prefix .. k .. ".", into)
    else into[#into + 1] = { prefix .. k, v } end
  end
  return into
end

local function value(v)
  if type(v) == "number" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return g17(v)
  end
  return tostring(v)
end

sl.source.file { path = os.getenv("IN"), format = "json" }
  :map(function(r)
    local fields = flatten(r, "", {})
    table.sort(fields, function(a, b) return a[1] < b[1] end)
    for i, f in ipairs(fields) do fields[i] = f[1] .. "=" .. value(f[2]) end
    return table.concat(fields, " ")
  end)
  :sink(sl.sink.stdout { format = "lines" })
