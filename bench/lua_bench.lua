-- The Lua side of `go run ./bench`: reads the workloads (setup steps
-- recorded from bench/workload.go) as JSON on stdin, runs each on a
-- bindings/lua Machine with its batch call, and prints per-stanza medians
-- as JSON, exactly as node_bench.mjs does for Node. Run by bench/node.go;
-- not meant to be run by hand.
local dir = (arg[0]:match("^(.*)/[^/]*$")) or "."
package.path = dir .. "/../bindings/lua/?.lua;" .. package.path
package.cpath = dir .. "/../bindings/lua/?.so;" .. package.cpath
local lastseen = require "lastseen"
local W = require "lastseen_wire"

local req = W.decode(io.read("a"))
local PROBE = "<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='probe-1'/>"
local results = W.array({})

local function setup(w)
  local m = lastseen.new({ served = { "montague.com" } })
  local sessions = {}
  for _, s in ipairs(w.setup) do
    local now = s.now and math.tointeger(tonumber(s.now))
    if s.op == "roster" then m:roster(s.a, s.b, "both")
    elseif s.op == "limit" then m:limit(now, s.n or 0, math.tointeger(tonumber(s.per_ns)))
    elseif s.op == "up" then m:up(now, s.a)
    elseif s.op == "session" then sessions[#sessions + 1] = s.a
    elseif s.op == "client" then m:client(now, sessions[(s.session or 0) + 1], s.a)
    elseif s.op == "server" then m:server(now, s.a)
    else error("unknown setup step " .. tostring(s.op)) end
  end
  return m
end

local function median(xs)
  local s = { table.unpack(xs) }
  table.sort(s)
  local k = #s // 2
  if #s % 2 == 1 then return s[k + 1] end
  return (s[k] + s[k + 1]) / 2
end

local function stanzas(outs)
  local t = W.array({})
  for i, o in ipairs(outs) do t[i] = o.stanza end
  return t
end

local function run_workload(w)
  local m = setup(w)
  local ins = { w["in"][1], w["in"][2] }
  local now, step = math.tointeger(tonumber(w.start_ns)), math.tointeger(tonumber(w.step_ns))
  local i = 0
  local function one(x)
    if w.session then return m:client(now, w.session, x) end
    return m:server(now, x)
  end
  if req.check then
    -- For the equality test: four single operations, then a probe for the
    -- workload's user, as bench/peers_test.go does on every engine.
    local ops = W.array({})
    for _ = 1, 4 do
      now = now + step
      ops[#ops + 1] = stanzas(one(ins[(i & 1) + 1]))
      i = i + 1
    end
    local probe = stanzas(m:server(now + 1000000000, PROBE))
    m:dispose()
    return { name = w.name, ops = ops, probe = probe }
  end
  local events = {}
  local function run(n)
    while n > 0 do
      local k = math.min(n, req.batch)
      now = now + step
      for j = 1, k do
        local x = ins[(i & 1) + 1]
        i = i + 1
        local ev = events[j] or {}
        events[j] = ev
        if w.session then ev.type, ev.now, ev.session, ev.stanza = "client", now, w.session, x
        else ev.type, ev.now, ev.stanza = "server", now, x end
      end
      for j = #events, k + 1, -1 do events[j] = nil end
      for _, r in ipairs(m:batch(events)) do
        if r.error then error(r.error) end
        if #r.outputs ~= w.want then error(("emitted %d stanzas, want %d"):format(#r.outputs, w.want)) end
      end
      n = n - k
    end
  end
  -- Wall time (ns) and the process CPU time (os.clock: user + system of
  -- every thread), which bench/measure.go reports as ns/op.
  local cpu
  local function timed(n)
    local c, t = os.clock(), lastseen.now()
    run(n)
    local wall = lastseen.now() - t
    cpu = (os.clock() - c) * 1e9
    return wall
  end
  -- Warm up (the guest grows its heap on the first calls), then calibrate
  -- to about sample_ms per sample.
  local warm_until = lastseen.now() + math.max(50, 3 * req.sample_ms) * 1e6
  while lastseen.now() < warm_until do run(req.batch) end
  local n = req.batch
  while true do
    local el = timed(n)
    if el >= req.sample_ms * 1e6 / 4 or n >= 1 << 24 then
      n = math.max(req.batch, math.floor(n * req.sample_ms * 1e6 / math.max(el, 1000) + 0.5))
      break
    end
    n = n * (el < req.sample_ms * 1e4 and 10 or 3)
  end
  local samples, wall = W.array({}), W.array({})
  for _ = 1, req.samples do
    collectgarbage()
    wall[#wall + 1] = timed(n) / n
    samples[#samples + 1] = cpu / n
  end
  m:dispose()
  return { name = w.name, ns_per_op = median(samples), samples = samples, wall_ns_per_op = median(wall), wall = wall }
end

for _, w in ipairs(req.workloads) do
  local ok, r = pcall(run_workload, w)
  results[#results + 1] = ok and r or { name = w.name, error = tostring(r) }
end
io.write(W.encode(results))
