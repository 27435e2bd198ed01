-- Specs for lua/sluice/host.lua: its ffi.cdef against the C headers it mirrors by hand
-- (host/prims.h, host/sl_api.h). The FFI trusts a declaration as written: a parameter
-- declared int in Lua and int64_t in C, or a constant that drifted, is a wrong call that
-- nothing reports. So every function, type and constant the cdef declares must stand in a
-- header alike, up to white space, parameter names included (the headers say the cdef is
-- theirs pasted as is).
local host = require "sluice.host"
local ffi = require "ffi"

local HEADERS = { "host/prims.h", "host/sl_api.h" }
-- What the cdef declares that the C library provides, not the host.
local FROM_LIBC = { isatty = true }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- C text without comments or preprocessor lines.
local function strip(text)
  return (("\n" .. text):gsub("/%*.-%*/", " "):gsub("//[^\n]*", " "):gsub("\n%s*#[^\n]*", "\n"))
end

-- One declaration as a string that differs only where the C differs: white space
-- collapsed, and none beside punctuation.
local function normal(decl)
  return (decl:gsub("%s+", " "):gsub(" ?([%*%(%),{}=]) ?", "%1"):gsub("^ ", ""):gsub(" $", ""))
end

-- The declarations of C text, by kind: functions[name] and typedefs[name] hold the
-- normalised declaration, constants[name] the value of an enum constant.
local function declarations(text)
  local found = { functions = {}, typedefs = {}, constants = {} }
  for stmt in (strip(text) .. ";"):gmatch("([^;]*);") do
    local decl = normal(stmt)
    local body = decl:match("^enum{(.*)}$")
    local fn = decl:match("([%a_][%w_]*)%b()$")
    if body then
      for name, value in (body .. ","):gmatch("([%a_][%w_]*)=([^,]+),") do
        found.constants[name] = value
      end
    elseif decl:match("^typedef ") then
      found.typedefs[decl:match("([%a_][%w_]*)$")] = decl
    elseif fn then
      found.functions[fn] = decl
    end
  end
  return found
end

-- Where lua_decls and c_decls (both from declarations()) disagree: one line per function,
-- type or constant that Lua declares otherwise than C, or that no header declares.
local function disagreements(lua_decls, c_decls)
  local out = {}
  local function check(kind, name, mine, theirs)
    if theirs == nil then
      out[#out + 1] = string.format("%s %s: in host.lua, in no header", kind, name)
    elseif mine ~= theirs then
      out[#out + 1] = string.format("%s %s: host.lua has %q, the header %q", kind, name,
        mine, theirs)
    end
  end
  for name, decl in pairs(lua_decls.functions) do
    if not FROM_LIBC[name] then check("function", name, decl, c_decls.functions[name]) end
  end
  for name, decl in pairs(lua_decls.typedefs) do
    check("type", name, decl, c_decls.typedefs[name])
  end
  for name, value in pairs(lua_decls.constants) do
    check("constant", name, value, c_decls.constants[name])
  end
  table.sort(out)
  return out
end

local function cdef_text()
  local path = host.libdir .. "/sluice/host.lua"
  local text = read(path):match("ffi%.cdef%s*%[%[(.-)%]%]")
  assert(text, "no ffi.cdef [[ ... ]] found in " .. path)
  return text
end

local function header_text()
  local parts = {}
  for i, path in ipairs(HEADERS) do parts[i] = read(path) end
  return table.concat(parts, "\n")
end

describe("host.lua's ffi.cdef", function()
  it("declares every function, type and constant as the C headers do", function()
    local lua_decls = declarations(cdef_text())
    assert.is_true(next(lua_decls.functions) ~= nil, "no function found in the cdef")
    assert.is_true(next(lua_decls.constants) ~= nil, "no constant found in the cdef")
    local wrong = disagreements(lua_decls, declarations(header_text()))
    assert.are.same({}, wrong)
  end)

  -- What Lua code reads is ffi.C's value, which the FFI took from the cdef itself.
  it("puts in ffi.C the values the headers give its constants", function()
    local c_constants = declarations(header_text()).constants
    for name in pairs(declarations(cdef_text()).constants) do
      assert.are.equal(tonumber(c_constants[name]), ffi.C[name], name)
    end
  end)

  -- The comparison itself, on declarations that differ as a careless edit would.
  it("tells a changed parameter, return type, name or constant from white space", function()
    local c = declarations([[
      /* a comment */
      #include <stdint.h>
      enum { SL_A = 1,   /* first */
             SL_B = 2 };
      typedef struct sl_x sl_x;
      int sl_x_add(sl_x *x, int64_t n);   /* 0 or ENOMEM */
      size_t sl_x_len(const sl_x *x);
    ]])
    assert.are.same({}, disagreements(declarations([[
      enum { SL_A = 1, SL_B = 2 };
      typedef struct sl_x sl_x;
      int sl_x_add(sl_x * x,int64_t n);
      size_t  sl_x_len( const sl_x *x );
      int isatty(int fd);
    ]]), c))
    assert.are.same({
      "constant SL_B: host.lua has \"3\", the header \"2\"",
      "function sl_x_add: host.lua has \"int sl_x_add(sl_x*x,int n)\", the header "
        .. "\"int sl_x_add(sl_x*x,int64_t n)\"",
      "function sl_x_gone: in host.lua, in no header",
      "function sl_x_len: host.lua has \"int sl_x_len(const sl_x*x)\", the header "
        .. "\"size_t sl_x_len(const sl_x*x)\"",
      "type sl_y: in host.lua, in no header",
    }, disagreements(declarations([[
      enum { SL_A = 1, SL_B = 3 };
      typedef struct sl_y sl_y;
      int sl_x_add(sl_x *x, int n);
      int sl_x_len(const sl_x *x);
      void sl_x_gone(void);
    ]]), c))
  end)
end)
