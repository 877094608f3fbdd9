-- The Lua binding against the real lastseen.wasm: the exchange of
-- wasm/ABI.md section 7, errors as values, announcements, durable state,
-- batches, resets and the reserve path.
local lastseen = require "lastseen"
local C = require "check"
local eq = C.eq

local MONTAGUE = { "montague.com" }
local T0 = 1347320467000000000 -- 2012-09-10T23:41:07Z
local T1 = 1347321600000000000 -- 2012-09-11T00:00:00Z
local PROBE = "<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>"
local REPLY = "<presence from='romeo@montague.com/balcony' to='juliet@capulet.com/chamber'><status>On the balcony</status>"
  .. "<delay xmlns='urn:xmpp:delay' from='romeo@montague.com/balcony' stamp='2012-09-10T23:41:07Z'/></presence>"

-- Instances share the compiled module; each test makes its own machine.
local function machine(o) o = o or {}; o.served = o.served or MONTAGUE; return lastseen.new(o) end

local function plain(outputs)
  local t = {}
  for i, o in ipairs(outputs) do t[i] = { kind = o.kind, to = o.to, stanza = o.stanza } end
  return t
end

return {
  { "ABI.md section 7 as one batch", function()
    local m = machine()
    local r = m:batch({
      { type = "roster", owner = "romeo@montague.com", contact = "juliet@capulet.com", sub = "both" },
      { type = "client", now = T0, session = "romeo@montague.com/balcony", stanza = "<presence><status>On the balcony</status></presence>" },
      { type = "server", now = T1, stanza = PROBE },
      { type = "server", now = T1, stanza = "<presence" },
    })
    eq(#r, 4, "results")
    eq(r[1], { outputs = {} }, "roster")
    eq(r[2], { outputs = {} }, "client")
    eq(plain(r[3].outputs), { { kind = "reply", to = "juliet@capulet.com/chamber", stanza = REPLY } }, "probe answer")
    local e = r[4].error
    eq({ e.code, e.number, e.event, e.bad_input, tostring(e), e.detail },
      { "MALFORMED", 2, "server", true,
        "lastseen: bad server input: malformed XML at byte 9: unexpected end of input in a start tag",
        { offset = 9, msg = "unexpected end of input in a start tag" } }, "malformed")
  end },

  { "methods return outputs and raise error values", function()
    local m = machine()
    m:roster("romeo@montague.com", "juliet@capulet.com", "both")
    eq(m:client(T0, "romeo@montague.com/balcony", "<presence><status>On the balcony</status></presence>"), {}, "client")
    eq(plain(m:server(T1, PROBE)), { { kind = "reply", to = "juliet@capulet.com/chamber", stanza = REPLY } }, "server")
    local before = m:state()
    local e = C.raises(m.client, m, T1, "tybalt@capulet.com/x", "<presence/>")
    eq({ e.code, e.event, e.bad_input }, { "SESSION", "client", true }, "a session at a domain not served")
    eq(m:state(), before, "state after a refused event")
    e = C.raises(m.client, m, T1, "romeo@montague.com/b", "<presence to='juliet@capulet.com' type='probe'><x a='1' a='2'/></presence>")
    eq(e.bad_input, true, "bad_input of " .. tostring(e))
    local ok, err = pcall(m.roster, m, "romeo@montague.com", "juliet@capulet.com", "friends")
    eq({ ok, type(err) == "string" and err:match("subscription must be") ~= nil }, { false, true }, "bad subscription")
  end },

  { "Last Activity: a query is answered and a session's query routed (kinds 4 and 5)", function()
    local m = machine()
    m:roster("romeo@montague.com", "juliet@capulet.com", "both")
    m:client(T0, "romeo@montague.com/balcony", "<presence/>")
    m:client(T0, "romeo@montague.com/balcony", "<presence type='unavailable'><status>Gone</status></presence>")
    local out = plain(m:server(T0 + 60 * 1000000000, "<iq from='juliet@capulet.com/chamber' to='romeo@montague.com' type='get' id='l1'><query xmlns='jabber:iq:last'/></iq>"))
    eq(out, { { kind = "iq-reply", to = "juliet@capulet.com/chamber",
      stanza = "<iq from='romeo@montague.com' to='juliet@capulet.com/chamber' type='result' id='l1'><query xmlns='jabber:iq:last' seconds='60'>Gone</query></iq>" } }, "answer")
    out = m:client(T1, "romeo@montague.com/balcony", "<iq to='juliet@capulet.com' type='get' id='l2'><query xmlns='jabber:iq:last'/></iq>")
    eq({ #out, out[1].kind, out[1].to }, { 1, "query", "juliet@capulet.com" }, "routed query")
  end },

  { "a probe through the client routes onwards", function()
    local m = machine()
    local out = m:client(T0, "romeo@montague.com/balcony", "<presence type='probe' to='juliet@capulet.com'/>")
    eq(#out, 1, "outputs")
    eq({ out[1].kind, out[1].to }, { "probe", "juliet@capulet.com" }, "routed probe")
  end },

  { "up and down announce to subscribers (ABI version 2)", function()
    local m = machine({ served = { "montague.com", "chat.montague.com" } })
    m:roster("chat.montague.com", "romeo@montague.com", "from")
    m:roster("chat.montague.com", "juliet@capulet.com", "both")
    m:roster("chat.montague.com", "tybalt@capulet.com", "to")
    local up = plain(m:up(T0, "chat.montague.com"))
    eq(up, {
      { kind = "reply", to = "juliet@capulet.com", stanza = "<presence from='chat.montague.com' to='juliet@capulet.com'><delay xmlns='urn:xmpp:delay' from='chat.montague.com' stamp='2012-09-10T23:41:07Z'/></presence>" },
      { kind = "reply", to = "romeo@montague.com", stanza = "<presence from='chat.montague.com' to='romeo@montague.com'><delay xmlns='urn:xmpp:delay' from='chat.montague.com' stamp='2012-09-10T23:41:07Z'/></presence>" },
    }, "up")
    local down = m:down(T1, "chat.montague.com")
    eq(#down, 2, "down outputs")
    eq(down[1].stanza:match("type='unavailable'") ~= nil, true, "down is unavailable: " .. down[1].stanza)
    eq(C.raises(m.up, m, T1, "romeo@montague.com").code, "NOT_DOMAIN", "up of a user")
  end },

  { "blocks and opt-outs change the answer", function()
    local m = machine()
    m:roster("romeo@montague.com", "juliet@capulet.com", "both")
    m:client(T0, "romeo@montague.com/balcony", "<presence/>")
    m:client(T0, "romeo@montague.com/balcony", "<presence type='unavailable'/>")
    local function answer() return m:server(T1, PROBE)[1] end
    eq(answer().stanza:match("<delay") ~= nil, true, "last seen before hide")
    m:hide("romeo@montague.com")
    local hidden = answer()
    eq(hidden.stanza:match("<delay") == nil, true, "no delay while hidden: " .. hidden.stanza)
    m:hide("romeo@montague.com", false)
    m:block("romeo@montague.com", "juliet@capulet.com")
    local blocked = m:server(T1, PROBE)
    m:block("romeo@montague.com", "juliet@capulet.com", false)
    eq(answer().stanza:match("<delay") ~= nil, true, "last seen after unblock")
    eq(#blocked == 0 or blocked[1].stanza ~= answer().stanza, true, "blocked gets something else")
  end },

  { "snapshot, restore and restarted move state between machines", function()
    local a = machine()
    a:client(T0, "romeo@montague.com/balcony", "<presence/>")
    local snap = a:snapshot()
    eq(snap:sub(1, 4), "LSSN", "snapshot magic")
    eq(a:state():sub(1, 4), "LSST", "state magic")
    local b = machine()
    b:restore(snap)
    eq(b:restarted(), 1, "resources taken offline")
    eq(b:restarted(), 0, "a second restarted takes none")
    local e = C.raises(b.restore, b, snap:sub(1, #snap - 1))
    eq(e.code, "CORRUPT", "truncated snapshot")
    local r = b:batch({ { type = "snapshot" }, { type = "restarted" }, { type = "limit", now = T1, burst = 2, per = 60e9 // 1 } })
    eq({ r[1].data == b:snapshot(), string.unpack("<I4", r[2].data), r[3] }, { true, 0, { outputs = {} } }, "data events in a batch")
  end },

  { "the journal: records replay on another machine; a damaged one is refused", function()
    local a = machine{ journal = true }
    a:roster("romeo@montague.com", "juliet@capulet.com", "both")
    eq(#a:records(), 0, "a fact is no durable change")
    a:client(T0, "romeo@montague.com/balcony", "<presence><status>On the balcony</status></presence>")
    local recs = a:records()
    eq(#recs > 0, true, "an available presence yields records")
    local r = a:batch({
      { type = "client", now = T1, session = "romeo@montague.com/phone", stanza = "<presence/>" },
      { type = "server", now = T1, stanza = PROBE },
    })
    eq(#r[1].records > 0, true, "a batch result carries its records")
    eq(#r[2].records, 0, "a probe changes nothing durable")
    for _, rec in ipairs(r[1].records) do recs[#recs + 1] = rec end
    a:close(T1, "romeo@montague.com/phone")
    for _, rec in ipairs(a:records()) do recs[#recs + 1] = rec end

    local b = machine()
    for _, rec in ipairs(recs) do b:apply_record(rec) end
    eq(b:snapshot(), a:snapshot(), "replayed records give the same durable state")
    local before = b:state()
    local e = C.raises(b.apply_record, b, recs[1]:sub(1, #recs[1] - 1))
    eq({ e.code, e.event }, { "CORRUPT", "apply" }, "a truncated record")
    eq(b:state(), before, "a refused record changes nothing")
    eq(#machine():records(), 0, "no journal, no records")
  end },

  { "reset empties the machine and keeps it on refused options", function()
    local m = machine()
    local empty = m:state()
    m:client(T0, "romeo@montague.com/balcony", "<presence/>")
    eq(m:state() ~= empty, true, "state changed")
    m:reset()
    eq(m:state(), empty, "after reset")
    m:client(T0, "romeo@montague.com/balcony", "<presence/>")
    local full = m:state()
    eq(C.raises(m.reset, m, { served = {} }).code, "CONFIG", "no domain")
    eq(m:state(), full, "refused reset keeps the machine")
    m:reset({ served = { "capulet.com" } })
    eq(C.raises(m.client, m, T0, "romeo@montague.com/balcony", "<presence/>").code, "SESSION", "new served domains")
  end },

  { "an event bigger than the input buffer goes through reserve", function()
    local m = machine({ max_bytes = 1 << 20 })
    m:roster("romeo@montague.com", "juliet@capulet.com", "both")
    local status = string.rep("x", 300 * 1024)
    m:client(T0, "romeo@montague.com/balcony", "<presence><status>" .. status .. "</status></presence>")
    local out = m:server(T1, PROBE)
    eq(#out[1].stanza > 300 * 1024, true, "the long status comes back")
    eq(C.raises(machine().client, machine(), T0, "romeo@montague.com/b", "<presence><status>" .. status .. "</status></presence>").code,
      "TOO_LARGE", "over the default max_bytes")
  end },

  { "a batch longer than one step", function()
    local m = machine()
    local evs = {}
    for i = 1, 3000 do
      evs[#evs + 1] = { type = "client", now = T0 + i, session = "romeo@montague.com/r" .. (i % 50), stanza = "<presence><status>" .. string.rep("s", 40) .. "</status></presence>" }
    end
    evs[#evs + 1] = { type = "server", now = T1, stanza = PROBE }
    local r = m:batch(evs)
    eq(#r, #evs, "one result per event")
    eq(plain(r[#r].outputs), { { kind = "reply", to = "juliet@capulet.com/chamber",
      stanza = "<presence from='romeo@montague.com' to='juliet@capulet.com/chamber' type='unsubscribed' id='p1'/>" } },
      "no subscription: Juliet is told so")
  end },

  { "dispose releases the instance", function()
    local m = machine()
    m:dispose()
    eq(C.raises(m.state, m).code, "RELEASED", "after dispose")
  end },
}
