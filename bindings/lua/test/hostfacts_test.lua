-- Facts from the host (ABI version 3): a machine with an authorizer asks
-- it when it needs a fact, and gives the bytes of a machine fed the same
-- facts as events; a callback that raises fails only that call.
local lastseen = require "lastseen"
local C = require "check"
local eq = C.eq

local SERVED = { "montague.com", "chat.montague.com" }
local function sec(s) return 946684800000000000 + s * 1000000000 end

local FACTS = {
  { "roster", "romeo@montague.com", "juliet@capulet.com", "both" },
  { "roster", "chat.montague.com", "nurse@capulet.com", "from" },
  { "roster", "chat.montague.com", "juliet@capulet.com", "both" },
  { "roster", "chat.montague.com", "tybalt@capulet.com", "both" },
  { "roster", "chat.montague.com", "paris@verona.lit", "to" },
  { "block", "chat.montague.com", "tybalt@capulet.com" },
  { "block", "romeo@montague.com", "tybalt@capulet.com" },
  { "hide", "benvolio@montague.com" },
}

local function by_events()
  local m = lastseen.new{ served = SERVED }
  for _, f in ipairs(FACTS) do m[f[1]](m, f[2], f[3], f[4]) end
  return m
end

local function table_facts()
  local t = lastseen.fact_table()
  for _, f in ipairs(FACTS) do t["set_" .. (f[1] == "hide" and "hidden" or f[1])](f[2], f[3], f[4]) end
  return t
end

local function probe(from, to) return ("<presence from='%s' to='%s' type='probe' id='p'/>"):format(from, to) end
local QUERY = "<iq from='juliet@capulet.com/c' to='romeo@montague.com' type='get' id='q'><query xmlns='jabber:iq:last'/></iq>"
local CALLS = {
  { "client", sec(0), "romeo@montague.com/balcony", "<presence><status>hi</status></presence>" },
  { "client", sec(1), "benvolio@montague.com/b", "<presence/>" },
  { "close", sec(2), "benvolio@montague.com/b" },
  { "server", sec(3), probe("juliet@capulet.com/c", "romeo@montague.com") },
  { "server", sec(3), probe("tybalt@capulet.com/t", "romeo@montague.com") },
  { "server", sec(3), probe("nurse@capulet.com/n", "romeo@montague.com") },
  { "server", sec(3), probe("juliet@capulet.com/c", "benvolio@montague.com") },
  { "server", sec(4), QUERY },
  { "client", sec(5), "romeo@montague.com/balcony", "<presence type='probe' to='tybalt@capulet.com'/>" },
  { "up", sec(6), "chat.montague.com" },
  { "down", sec(7), "chat.montague.com" },
}

local function run(m, call)
  local ok, out = pcall(m[call[1]], m, table.unpack(call, 2))
  if not ok then return { error = tostring(out) } end
  local t = {}
  for i, o in ipairs(out) do t[i] = { o.kind, o.to, o.stanza } end
  return { out = t }
end

return {
  { "facts from the host give the bytes of facts as events", function()
    local ev = by_events()
    local host = lastseen.new{ served = SERVED, authorizer = table_facts() }
    for i, call in ipairs(CALLS) do
      eq(run(host, call), run(ev, call), "call " .. i .. " " .. call[1])
      eq(host:state() == ev:state(), true, "state after call " .. i)
    end
    local up = run(host, { "up", sec(8), "chat.montague.com" }).out
    eq({ up[1][2], up[2][2], #up }, { "juliet@capulet.com", "nurse@capulet.com", 2 }, "up's subscribers, sorted, blocked and 'to' left out")
    eq(C.raises(host.hide, host, "romeo@montague.com").code, "NO_FACT_STORE", "the machine keeps no facts")
  end },

  { "a callback that raises fails that call with HOST, emits nothing, and the machine goes on", function()
    local t = table_facts()
    local failing = "romeo@montague.com"
    local function check(owner) if owner == failing then error("roster storage unreachable", 0) end end
    local auth = {
      probe_facts = function(o, p) check(o); return t.probe_facts(o, p) end,
      blocks = function(o, j) check(o); return t.blocks(o, j) end,
      subscribers = function(o) check(o); return t.subscribers(o) end,
    }
    local m = lastseen.new{ served = SERVED, authorizer = auth }
    m:client(sec(0), "romeo@montague.com/balcony", "<presence/>")
    local before = m:state()
    for _, k in ipairs({ 4, 8, 9 }) do
      local call = CALLS[k]
      local e = C.raises(m[call[1]], m, table.unpack(call, 2))
      eq({ e.code, e.cause }, { "HOST", "roster storage unreachable" }, "call " .. k)
      eq(e.message:match("roster storage unreachable") ~= nil, true, e.message)
    end
    eq(m:state() == before, true, "refused calls changed nothing")
    failing = "chat.montague.com"
    local e = C.raises(m.up, m, sec(6), "chat.montague.com")
    eq({ e.code, e.event }, { "HOST", "up" }, "up with a failing subscribers")
    eq(m:state() == before, true, "a refused up changed nothing")
    failing = nil
    eq(#m:up(sec(7), "chat.montague.com"), 2, "up after the failure")
    eq(#m:server(sec(8), CALLS[4][3]), 1, "a probe after the failures")
    failing = "romeo@montague.com"
    local r = m:batch({ { type = "server", now = sec(9), stanza = CALLS[7][3] }, { type = "server", now = sec(9), stanza = CALLS[4][3] } })
    eq(r[1].outputs ~= nil, true, "the batch's first event")
    eq({ r[2].error.code, r[2].error.cause }, { "HOST", "roster storage unreachable" }, "the batch's second event")
  end },

  { "a callback that calls into its machine fails cleanly; no subscribers means no up", function()
    local t = table_facts()
    local m
    m = lastseen.new{ served = SERVED, authorizer = {
      probe_facts = function(o, p) m:state(); return t.probe_facts(o, p) end,
      blocks = function(o, j) m:dispose(); return t.blocks(o, j) end,
    } }
    m:client(sec(0), "romeo@montague.com/balcony", "<presence/>")
    local e = C.raises(m.server, m, sec(1), CALLS[4][3])
    eq({ e.code, e.cause.code }, { "HOST", "REENTRY" }, "re-entry")
    e = C.raises(m.client, m, sec(1), "romeo@montague.com/balcony", "<presence type='probe' to='tybalt@capulet.com'/>")
    eq(e.code, "HOST", "dispose from a callback: " .. tostring(e.cause))
    e = C.raises(m.up, m, sec(2), "chat.montague.com")
    eq({ e.code, e.message:match("cannot list subscribers") ~= nil }, { "BAD_INPUT", true }, "up without subscribers")
    eq(#m:client(sec(3), "romeo@montague.com/balcony", "<presence/>"), 0, "the machine still works")
  end },

  { "after a trap the fresh instance asks the authorizer again", function()
    local quiet = lastseen.compile(nil, false, true)
    local m = lastseen.new{ served = SERVED, authorizer = table_facts(), max_memory = 64 << 20, max_bytes = 1 << 30, wasm = quiet }
    local huge = "<presence><status>" .. string.rep("x", 80 << 20) .. "</status></presence>"
    eq(C.raises(m.client, m, sec(0), "romeo@montague.com/balcony", huge).code, "TRAP", "the trap")
    m:client(sec(1), "romeo@montague.com/balcony", "<presence/>")
    local out = m:server(sec(2), CALLS[4][3])
    eq(out[1].stanza:match("<delay") ~= nil, true, "juliet sees romeo: " .. out[1].stanza)
    eq(#m:up(sec(3), "chat.montague.com"), 2, "and up lists the host's subscribers")
  end },
}
