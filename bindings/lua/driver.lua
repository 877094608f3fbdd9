-- The scenario driver: lets the Go test suite and `lastseen replay
-- -engine=lua` run scenarios on this binding. It is not part of the
-- binding's API.
--
-- It speaks the protocol of bindings/node/driver.mjs, line for line, so
-- that internal/engine drives both bindings with one client: one JSON
-- object per line on stdin, one answer per line on stdout, in order; byte
-- strings as base64, times and durations as decimal strings of ns.
--
--   {"op":"new","served":["d"]}               -> {"ok":true,"id":1}
--   {"op":"roster","id":1,"owner":b64,"contact":b64,"sub":"both"}
--   {"op":"block","id":1,"owner":b64,"jid":b64}
--   {"op":"hide","id":1,"owner":b64}
--   {"op":"limit","id":1,"burst":2,"per":"60000000000"}
--   {"op":"client","id":1,"now":"…","session":b64,"stanza":b64}
--   {"op":"server","id":1,"now":"…","stanza":b64}
--   {"op":"close"|"up"|"down","id":1,"now":"…","jid":b64}
--   {"op":"state"|"snapshot","id":1}          -> {"ok":true,"state":b64}
--   {"op":"restore","id":1,"snapshot":b64}    -> {"ok":true}
--   {"op":"restarted","id":1}                 -> {"ok":true,"n":N}
--   {"op":"release","id":1}
-- Input answers: {"ok":true,"out":[{"kind":"reply","to":"…","stanza":b64}]};
-- an unknown kind travels as its number. Errors:
-- {"ok":false,"error":{"code":"…","message":"…","badInput":true,"event":"…"}}.
local dir = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$")) or "."
package.path = dir .. "/?.lua;" .. package.path
package.cpath = dir .. "/?.so;" .. package.cpath
local lastseen = require "lastseen"

-- ---- base64 ----

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64val = {}
for i = 1, 64 do b64val[B64:byte(i)] = i - 1 end

local function b64decode(s)
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

local function b64encode(s)
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
  for word, v in pairs({ ["true"] = true, ["false"] = false, null = lastseen }) do
    if s:sub(i, i + #word - 1) == word then return v ~= lastseen and v or nil, i + #word end
  end
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not num or num == "" then error("bad JSON at " .. i) end
  return math.tointeger(tonumber(num)) or tonumber(num), i + #num
end

local function encode(v)
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
      for i, x in ipairs(v) do parts[i] = encode(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do parts[#parts + 1] = encode(k) .. ":" .. encode(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

local function array(t) return setmetatable(t, { __metatable = "array" }) end

-- ---- the machines ----

local machines, idle, next_id = {}, {}, 1

local function outputs(outs)
  local t = array({})
  for i, o in ipairs(outs) do t[i] = { kind = o.kind, to = o.to, stanza = b64encode(o.stanza) } end
  return { out = t }
end

local function now(req) return req.now and math.tointeger(tonumber(req.now)) or 0 end

local function handle(req)
  if req.op == "new" then
    local id = next_id
    next_id = next_id + 1
    -- A released machine is reused with reset: an instance costs more.
    local m = table.remove(idle)
    if m then
      local ok, err = pcall(m.reset, m, { served = req.served or {} })
      if not ok then idle[#idle + 1] = m; error(err, 0) end
    else
      m = lastseen.new({ served = req.served or {} })
    end
    machines[id] = m
    return { id = id }
  end
  local m = machines[req.id] or error(("no machine %s"):format(tostring(req.id)), 0)
  local op = req.op
  if op == "roster" then m:roster(b64decode(req.owner), b64decode(req.contact), req.sub); return {}
  elseif op == "block" then m:block(b64decode(req.owner), b64decode(req.jid)); return {}
  elseif op == "hide" then m:hide(b64decode(req.owner)); return {}
  elseif op == "limit" then m:limit(req.burst or 0, math.tointeger(tonumber(req.per or "0"))); return {}
  elseif op == "client" then return outputs(m:client(now(req), b64decode(req.session), b64decode(req.stanza)))
  elseif op == "server" then return outputs(m:server(now(req), b64decode(req.stanza)))
  elseif op == "close" or op == "up" or op == "down" then return outputs(m[op](m, now(req), b64decode(req.jid)))
  elseif op == "state" or op == "snapshot" then return { state = b64encode(m[op](m)) }
  elseif op == "restore" then m:restore(b64decode(req.snapshot)); return {}
  elseif op == "restarted" then return { n = m:restarted() }
  elseif op == "release" then machines[req.id] = nil; idle[#idle + 1] = m; return {}
  end
  error(("unknown op %s"):format(encode(op)), 0)
end

for line in io.lines() do
  if line ~= "" then
    local ok, answer = pcall(function() return handle((decode_value(line, 1))) end)
    if ok then
      answer.ok = true
    else
      local e = answer
      if lastseen.is_error(e) then
        answer = { ok = false, error = { code = e.code, message = e.message, badInput = e.bad_input, event = e.event } }
      else
        answer = { ok = false, error = { code = "DRIVER", message = tostring(e), badInput = false, event = "" } }
      end
    end
    io.stdout:write(encode(answer), "\n")
    io.stdout:flush()
  end
end
