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
--   {"op":"new","served":["d"],"hostFacts":true}: facts from the host (ABI
--       version 3): roster, block and hide fill a lastseen.fact_table()
--       that the machine asks; the caller sends them normalised.
--   {"op":"roster","id":1,"owner":b64,"contact":b64,"sub":"both"}
--   {"op":"block","id":1,"owner":b64,"jid":b64}
--   {"op":"hide","id":1,"owner":b64}
--   {"op":"limit","id":1,"now":"…","burst":2,"per":"60000000000"}
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

local W = require "lastseen_wire"
local b64decode, b64encode, encode, array = W.b64decode, W.b64encode, W.encode, W.array

-- ---- the machines ----

local machines, tables, idle, next_id = {}, {}, {}, 1

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
    local options = { served = req.served or {} }
    if req.hostFacts then options.authorizer = lastseen.fact_table() end
    local m = table.remove(idle)
    if m then
      local ok, err = pcall(m.reset, m, options)
      if not ok then idle[#idle + 1] = m; error(err, 0) end
    else
      m = lastseen.new(options)
    end
    machines[id], tables[id] = m, options.authorizer
    return { id = id }
  end
  local m = machines[req.id] or error(("no machine %s"):format(tostring(req.id)), 0)
  local op = req.op
  local t = tables[req.id]
  if t and op == "roster" then t.set_roster(b64decode(req.owner), b64decode(req.contact), req.sub); return {}
  elseif t and op == "block" then t.set_block(b64decode(req.owner), b64decode(req.jid)); return {}
  elseif t and op == "hide" then t.set_hidden(b64decode(req.owner)); return {}
  elseif op == "roster" then m:roster(b64decode(req.owner), b64decode(req.contact), req.sub); return {}
  elseif op == "block" then m:block(b64decode(req.owner), b64decode(req.jid)); return {}
  elseif op == "hide" then m:hide(b64decode(req.owner)); return {}
  elseif op == "limit" then m:limit(now(req), req.burst or 0, math.tointeger(tonumber(req.per or "0"))); return {}
  elseif op == "client" then return outputs(m:client(now(req), b64decode(req.session), b64decode(req.stanza)))
  elseif op == "server" then return outputs(m:server(now(req), b64decode(req.stanza)))
  elseif op == "close" or op == "up" or op == "down" then return outputs(m[op](m, now(req), b64decode(req.jid)))
  elseif op == "state" or op == "snapshot" then return { state = b64encode(m[op](m)) }
  elseif op == "restore" then m:restore(b64decode(req.snapshot)); return {}
  elseif op == "restarted" then return { n = m:restarted() }
  elseif op == "release" then machines[req.id], tables[req.id] = nil, nil; idle[#idle + 1] = m; return {}
  end
  error(("unknown op %s"):format(encode(op)), 0)
end

for line in io.lines() do
  if line ~= "" then
    local ok, answer = pcall(function() return handle(W.decode(line)) end)
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
