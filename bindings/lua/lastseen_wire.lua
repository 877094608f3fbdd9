-- The wire format of the Lua drivers (driver.lua, and the benchmark's
-- bench/lua_bench.lua): base64 and the JSON their Go clients send, that is
-- objects, arrays, strings, numbers, booleans and null. Not part of the
-- binding's API.
local W = {}

-- ---- base64 ----

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64val = {}
for i = 1, 64 do b64val[B64:byte(i)] = i - 1 end

function W.b64decode(s)
  if s == nil then return "" end
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    local v = b64val[s:byte(i)]
    if v then
      bits, nbits = (bits << 6) | v, nbits + 6
      if nbits >= 8 then
        nbits = nbits - 8
        out[#out + 1] = string.char((bits >> nbits) & 0xff)
      end
    end
  end
  return table.concat(out)
end

function W.b64encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local k = #out
    out[k + 1] = B64:sub((n >> 18) + 1, (n >> 18) + 1)
    out[k + 2] = B64:sub(((n >> 12) & 63) + 1, ((n >> 12) & 63) + 1)
    out[k + 3] = b and B64:sub(((n >> 6) & 63) + 1, ((n >> 6) & 63) + 1) or "="
    out[k + 4] = c and B64:sub((n & 63) + 1, (n & 63) + 1) or "="
  end
  return table.concat(out)
end

-- ---- JSON: what the protocol needs (objects, arrays, strings, numbers, booleans, null) ----

local decode_value

local ESC = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function skip(s, i) return s:find("[^ \t\r\n]", i) or #s + 1 end

local function decode_string(s, i)
  local out = {}
  i = i + 1
  while true do
    local j = s:find('["\\]', i)
    if not j then error("unterminated string") end
    out[#out + 1] = s:sub(i, j - 1)
    if s:sub(j, j) == '"' then return table.concat(out), j + 1 end
    local e = s:sub(j + 1, j + 1)
    if e == "u" then
      local cp = tonumber(s:sub(j + 2, j + 5), 16)
      i = j + 6
      if cp >= 0xD800 and cp < 0xDC00 and s:sub(i, i + 1) == "\\u" then
        cp = 0x10000 + ((cp - 0xD800) << 10) + (tonumber(s:sub(i + 2, i + 5), 16) - 0xDC00)
        i = i + 6
      end
      out[#out + 1] = utf8.char(cp)
    else
      out[#out + 1] = ESC[e] or error("bad escape \\" .. e)
      i = j + 2
    end
  end
end

function decode_value(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return t, i + 1 end
    while true do
      local k
      k, i = decode_string(s, skip(s, i))
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then error("expected : at " .. i) end
      t[k], i = decode_value(s, i + 1)
      i = skip(s, i)
      c = s:sub(i, i)
      if c == "}" then return t, i + 1 end
      if c ~= "," then error("expected , or } at " .. i) end
      i = i + 1
    end
  elseif c == "[" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return t, i + 1 end
    while true do
      t[#t + 1], i = decode_value(s, i)
      i = skip(s, i)
      c = s:sub(i, i)
      if c == "]" then return t, i + 1 end
      if c ~= "," then error("expected , or ] at " .. i) end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  end
  for word, v in pairs({ ["true"] = true, ["false"] = false, null = W }) do
    if s:sub(i, i + #word - 1) == word then return v ~= W and v or nil, i + #word end
  end
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not num or num == "" then error("bad JSON at " .. i) end
  return math.tointeger(tonumber(num)) or tonumber(num), i + #num
end

function W.encode(v)
  local t = type(v)
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(ch)
      return ({ ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" })[ch]
        or ("\\u%04x"):format(ch:byte())
    end) .. '"'
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local parts = {}
    if #v > 0 or next(v) == nil and getmetatable(v) == "array" then
      for i, x in ipairs(v) do parts[i] = W.encode(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do parts[#parts + 1] = W.encode(k) .. ":" .. W.encode(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

--- array marks t as a JSON array, so that an empty one encodes as [].
function W.array(t) return setmetatable(t, { __metatable = "array" }) end

--- decode parses one JSON value.
function W.decode(s) return (decode_value(s, 1)) end


return W
