-- The cost of a probe's facts on the Lua binding (ABI version 3), as
-- bench/hostfacts_bench.mjs measures it on Node.js: facts as events in
-- the probe's batch, answered by the authorizer, kept in the guest. Run by
-- bench/hostfacts.sh; prints one JSON line: per mode, the ns per probe of
-- each of ROUNDS rounds (the modes interleaved).
local dir = (arg[0]:match("^(.*)/[^/]*$")) or "."
package.path = dir .. "/../bindings/lua/?.lua;" .. package.path
package.cpath = dir .. "/../bindings/lua/?.so;" .. package.cpath
local lastseen = require "lastseen"

local N, ROUNDS = tonumber(os.getenv("PROBES") or 20000), tonumber(os.getenv("ROUNDS") or 5)
local T0 = 946684800000000000
local SERVED = { "montague.com" }
local PROBE = "<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>"

local function offline(m, ask)
  m:client(T0, "romeo@montague.com/balcony", "<presence><status>On the balcony</status></presence>")
  m:client(T0 + 1, "romeo@montague.com/balcony", "<presence type='unavailable'><status>gone fishing</status></presence>")
  local out = ask()
  assert(#out == 1 and out[1].stanza:find("gone fishing", 1, true), "the probe's answer")
end

local MODES = { "kept", "events", "host" }
local make = {
  kept = function()
    local m = lastseen.new{ served = SERVED }
    m:roster("romeo@montague.com", "juliet@capulet.com", "both")
    local ask = function() return m:server(T0 + 2, PROBE) end
    offline(m, ask)
    return ask
  end,
  events = function()
    local m = lastseen.new{ served = SERVED }
    local batch = {
      { type = "roster", owner = "romeo@montague.com", contact = "juliet@capulet.com", sub = "both" },
      { type = "block", owner = "romeo@montague.com", jid = "tybalt@capulet.com", blocked = false },
      { type = "hide", owner = "romeo@montague.com", hidden = false },
      { type = "server", now = T0 + 2, stanza = PROBE },
      { type = "roster", owner = "romeo@montague.com", contact = "juliet@capulet.com", sub = "none" },
    }
    local ask = function() return m:batch(batch)[4].outputs end
    offline(m, ask)
    return ask
  end,
  host = function()
    local facts = lastseen.fact_table()
    facts.set_roster("romeo@montague.com", "juliet@capulet.com", "both")
    local m = lastseen.new{ served = SERVED, authorizer = facts }
    local ask = function() return m:server(T0 + 2, PROBE) end
    offline(m, ask)
    return ask
  end,
}

local asks, times = {}, {}
for _, k in ipairs(MODES) do asks[k], times[k] = make[k](), {} end
for _ = 1, ROUNDS do
  for _, k in ipairs(MODES) do
    local ask = asks[k]
    for _ = 1, N // 10 do ask() end -- warm
    local t = lastseen.now()
    for _ = 1, N do ask() end
    times[k][#times[k] + 1] = (lastseen.now() - t) / N
  end
end
local parts = {}
for _, k in ipairs(MODES) do
  local ns = {}
  for i, t in ipairs(times[k]) do ns[i] = ("%d"):format(math.floor(t + 0.5)) end
  parts[#parts + 1] = ('"%s":[%s]'):format(k, table.concat(ns, ","))
end
print("{" .. table.concat(parts, ",") .. "}")
