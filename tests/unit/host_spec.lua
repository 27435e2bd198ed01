-- Specs for lua/sluice/host.lua: its ffi.cdef against the C headers it mirrors by hand
-- (host/sl_api.h and the headers it includes as the FFI door). The FFI trusts a declaration
-- as written: a parameter declared int in Lua and int64_t in C, a struct field that moved,
-- or a constant that drifted, is a wrong call or a wrong read that nothing reports. So
-- every function, type, struct and constant the cdef declares must stand in one of those
-- headers alike: functions up to white space, parameter names included (the headers say
-- the cdef is theirs pasted as is); structs field by field, in order, by name and type
-- (so `double a, b;` in Lua may stand for two lines with comments in C).
local host = require "sluice.host"
local ffi = require "ffi"

local API = "host/sl_api.h"
-- What the cdef declares that the C library provides, not the host.
local FROM_LIBC = { isatty = true }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The headers Lua may reach through the FFI: sl_api.h and the headers it includes with
-- quotes (its own, in host/; <system> headers are not the host's).
local function ffi_headers()
  local list = { API }
  for name in read(API):gmatch('\n%s*#%s*include%s*"([^"]+)"') do
    list[#list + 1] = "host/" .. name
  end
  return list
end

-- C text without comments or preprocessor lines.
local function strip(text)
  return (("\n" .. text):gsub("/%*.-%*/", " "):gsub("//[^\n]*", " "):gsub("\n%s*#[^\n]*", "\n"))
end

-- One declaration as a string that differs only where the C differs: white space
-- collapsed, and none beside punctuation.
local function normal(decl)
  return (decl:gsub("%s+", " "):gsub(" ?([%*%(%),{}=%[%];]) ?", "%1"):gsub("^ ", "")
    :gsub(" $", ""))
end

-- The statements of C text that end in ';' outside braces, and what follows the last one.
local function statements(text)
  local out, depth, start = {}, 0, 1
  for i = 1, #text do
    local c = text:byte(i)
    if c == 123 then depth = depth + 1                      -- {
    elseif c == 125 then depth = depth - 1                  -- }
    elseif c == 59 and depth == 0 then                      -- ;
      out[#out + 1] = text:sub(start, i - 1)
      start = i + 1
    end
  end
  return out, text:sub(start)
end

-- The fields of a struct or union body (normalised, without its braces), in order, one
-- string per field however the C groups them: "double x", "const char *name",
-- "double pad[3]", and a nested "union{...}u" with its own fields spelled the same way.
-- nil when a field is not understood.
local function fields(body)
  local out = {}
  local stmts, rest = statements(body)
  if normal(rest) ~= "" then return nil end
  for _, stmt in ipairs(stmts) do
    local decl = normal(stmt)
    local kind, inner, names = decl:match("^(%a+)(%b{})(.+)$")
    local base, list
    if kind == "union" or kind == "struct" then
      local inner_fields = fields(inner:sub(2, -2))
      if not inner_fields then return nil end
      base, list = kind .. "{" .. table.concat(inner_fields, ";") .. "}", names
      for name in (list .. ","):gmatch("([^,]*),") do out[#out + 1] = base .. name end
    else
      local first, others = decl:match("^([^,]+)(.*)$")
      if not first then return nil end
      local prefix, stars, name, dims =
        first:match("^(.-[%w_]) ?(%**)([%a_][%w_]*)([%[%]%w_]*)$")
      if not prefix then return nil end
      out[#out + 1] = prefix .. " " .. stars .. name .. dims
      for piece in others:gmatch(",([^,]+)") do
        local s2, n2, d2 = piece:match("^(%**)([%a_][%w_]*)([%[%]%w_]*)$")
        if not n2 then return nil end
        out[#out + 1] = prefix .. " " .. s2 .. n2 .. d2
      end
    end
  end
  return out
end

-- The declarations of C text, by kind: functions[name] and typedefs[name] hold the
-- normalised declaration, constants[name] the value of an enum constant, structs[name]
-- {tag=, fields=} of a typedef'd struct with a body, and unknown[] the statements that
-- are none of these.
local function declarations(text)
  local found = { functions = {}, typedefs = {}, constants = {}, structs = {}, unknown = {} }
  local stmts, rest = statements(strip(text))
  stmts[#stmts + 1] = rest
  for _, stmt in ipairs(stmts) do
    local decl = normal(stmt)
    local body = decl:match("^enum{(.*)}$")
    local tag, sbody, sname = decl:match("^typedef struct ?([%w_]*)(%b{})([%a_][%w_]*)$")
    local fn = decl:match("([%a_][%w_]*)%b()$")
    if decl == "" then
      -- nothing: the text after the last ';'
    elseif body then
      for name, value in (body .. ","):gmatch("([%a_][%w_]*)=([^,]+),") do
        found.constants[name] = value
      end
    elseif sname then
      local list = fields(sbody:sub(2, -2))
      if list then
        found.structs[sname] = { tag = tag, fields = list }
      else
        found.unknown[#found.unknown + 1] = decl
      end
    elseif decl:match("^typedef [%a_][%w_ ]* [%a_][%w_]*$") then
      found.typedefs[decl:match("([%a_][%w_]*)$")] = decl
    elseif fn then
      found.functions[fn] = decl
    else
      found.unknown[#found.unknown + 1] = decl
    end
  end
  return found
end

-- Where lua_decls and c_decls (both from declarations()) disagree: one line per function,
-- type, struct or constant that Lua declares otherwise than C, or that no header declares,
-- and per declaration of Lua's that is not understood at all.
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
  for name, mine in pairs(lua_decls.structs) do
    local theirs = c_decls.structs[name]
    if theirs == nil then
      check("struct", name, true, nil)
    else
      check("struct", name .. " tag", mine.tag, theirs.tag)
      for i = 1, math.max(#mine.fields, #theirs.fields) do
        check("struct", string.format("%s field %d", name, i), mine.fields[i] or "(none)",
          theirs.fields[i] or "(none)")
      end
    end
  end
  for _, decl in ipairs(lua_decls.unknown) do
    out[#out + 1] = string.format("not understood: %q", decl)
  end
  table.sort(out)
  return out
end

local function host_lua()
  return read(host.libdir .. "/sluice/host.lua")
end

local function cdef_text()
  local text = host_lua():match("ffi%.cdef%s*%[%[(.-)%]%]")
  assert(text, "no ffi.cdef [[ ... ]] found in host.lua")
  return text
end

local function header_text()
  local parts = {}
  for i, path in ipairs(ffi_headers()) do parts[i] = read(path) end
  return table.concat(parts, "\n")
end

describe("host.lua's ffi.cdef", function()
  it("declares every function, type, struct and constant as the C headers do", function()
    local lua_decls = declarations(cdef_text())
    assert.is_true(next(lua_decls.functions) ~= nil, "no function found in the cdef")
    assert.is_true(next(lua_decls.constants) ~= nil, "no constant found in the cdef")
    assert.is_true(next(lua_decls.structs) ~= nil, "no struct found in the cdef")
    local wrong = disagreements(lua_decls, declarations(header_text()))
    assert.are.same({}, wrong)
  end)

  it("takes its headers from sl_api.h, which names the FFI door's headers", function()
    local list = ffi_headers()
    assert.are.equal(API, list[1])
    assert.is_true(#list >= 3, "sl_api.h includes no header of its own")
    for _, path in ipairs(list) do assert.is_truthy(io.open(path, "rb"), path) end
  end)

  -- What Lua code reads is ffi.C's value, which the FFI took from the cdef itself.
  it("puts in ffi.C the values the headers give its constants", function()
    local c_constants = declarations(header_text()).constants
    for name in pairs(declarations(cdef_text()).constants) do
      assert.are.equal(tonumber(c_constants[name]), ffi.C[name], name)
    end
  end)

  -- (a call: ffi.cdef followed by its argument, or passed on as in pcall(ffi.cdef, s))
  local function cdef_calls(text)
    local _, n = text:gsub("ffi%.cdef%s*[%[%(\"',]", "")
    return n
  end
  it("is the only ffi.cdef of the library", function()
    assert.are.equal(1, cdef_calls(host_lua()), "ffi.cdef calls in host.lua")
    local p = assert(io.popen("ls " .. host.libdir .. "/sluice/*.lua"))
    for path in p:lines() do
      if not path:match("/host%.lua$") then
        assert.are.equal(0, cdef_calls(read(path)), path .. " has an ffi.cdef of its own")
      end
    end
    p:close()
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

  it("tells a struct field of another name, type, size or place from its spelling", function()
    local c = declarations([[
      typedef struct sl_v {
          double t;           /* ms */
          double a, b;
          double pad[2];
          const char *s;
      } sl_v;
      typedef struct sl_w {
          double type_;
          union {
              sl_v v_;
              double n;
          } u;
      } sl_w;
    ]])
    assert.are.same({}, disagreements(declarations([[
      typedef struct sl_v { double t, a, b, pad[2]; const char * s; } sl_v;
      typedef struct sl_w { double type_; union { sl_v v_; double n; } u; } sl_w;
    ]]), c))
    assert.are.same({
      "struct sl_q: in host.lua, in no header",
      "struct sl_v field 2: host.lua has \"double b\", the header \"double a\"",
      "struct sl_v field 3: host.lua has \"double a\", the header \"double b\"",
      "struct sl_v field 4: host.lua has \"double pad[3]\", the header \"double pad[2]\"",
      "struct sl_v field 5: host.lua has \"const char s\", the header \"const char *s\"",
      "struct sl_v field 6: host.lua has \"float f\", the header \"(none)\"",
      "struct sl_w field 2: host.lua has \"union{sl_v v_;int n}u\", the header "
        .. "\"union{sl_v v_;double n}u\"",
    }, disagreements(declarations([[
      typedef struct sl_v { double t, b, a, pad[3]; const char s; float f; } sl_v;
      typedef struct sl_w { double type_; union { sl_v v_; int n; } u; } sl_w;
      typedef struct sl_q { double x; } sl_q;
    ]]), c))
  end)

  it("reports a declaration of the cdef that it does not understand", function()
    assert.are.same({ "not understood: \"struct sl_z{int a;}\"" },
      disagreements(declarations("struct sl_z { int a; };"), declarations("")))
  end)
end)
