-- lastseen for Lua 5.4: the lastseen presence machine (XEP-0318 last-seen
-- presence probes) as lastseen.wasm, run by wasmtime in this process.
--
-- This file is the host side of wasm/ABI.md (version 3) above the C module
-- lastseen_core (bindings/lua/lastseen_core.c), which moves bytes in and
-- out of the guest. Every byte written and read here is described on that
-- page; the event and result layouts are the tables below, so that a new
-- op, field, output kind or result code is a row, not new code.
--
--   local lastseen = require "lastseen"
--   local m = lastseen.new{ served = { "montague.com" } }
--   m:roster("romeo@montague.com", "juliet@capulet.com", "both")
--   m:client(lastseen.now(), "romeo@montague.com/balcony", "<presence/>")
--   for _, o in ipairs(m:server(lastseen.now(), probe)) do
--     send(o.to, o.stanza)    -- o.kind: "reply", "probe", "error", "iq-reply", "query"
--   end
--
-- Times are integers: nanoseconds since the Unix epoch (lastseen.now()).
-- Methods raise a lastseen error value (a table with code, message,
-- event, bad_input, reason, detail; tostring gives the message): catch it
-- with pcall. Machine:batch reports errors per event instead.

local core = require "lastseen_core"

local M = {}

--- The ABI version this binding speaks (ABI.md section 9).
M.ABI_VERSION = 3

-- ABI.md section 4: statuses.
local STATUS_OK, STATUS_DECODE, STATUS_PANIC, STATUS_LENGTH = 0, 1, 2, 3

-- ABI.md section 5: events. Each field is "name format": the event
-- table's key and its string.pack format, in order after the op byte. A
-- field with a converter in CONVERT is passed through it first; a missing
-- str is empty and a missing number 0. data marks the events whose result
-- is their data (a batch returns {data=} for them).
local EVENTS = {
  client    = { op = 2,  "now i8", "session s4", "stanza s4" },
  server    = { op = 3,  "now i8", "stanza s4" },
  close     = { op = 4,  "now i8", "session s4" },
  up        = { op = 5,  "now i8", "jid s4" },
  down      = { op = 6,  "now i8", "jid s4" },
  roster    = { op = 7,  "owner s4", "contact s4", "sub B" },
  block     = { op = 8,  "owner s4", "jid s4", "blocked B" },
  hide      = { op = 9,  "owner s4", "hidden B" },
  limit     = { op = 10, "now i8", "burst i8", "per i8" },
  state     = { op = 11, data = true },
  snapshot  = { op = 12, data = true },
  restore   = { op = 13, "snapshot s4" },
  restarted = { op = 14, data = true },
  apply     = { op = 15, "record s4" },
}
for _, spec in pairs(EVENTS) do
  local fmt = { "<B" }
  spec.names, spec.zero = {}, {}
  for i, f in ipairs(spec) do
    local name, code = f:match("^(%S+) (%S+)$")
    spec.names[i], fmt[#fmt + 1] = name, code
    spec.zero[i] = code:sub(1, 1) == "s" and "" or 0
  end
  spec.fmt = table.concat(fmt)
end
local OP_CONFIG = 1

--- Output kinds (ABI.md section 6) by number. An unknown kind keeps its number.
--- Every output goes to its to: reply, error and iq-reply are answers to
--- deliver; probe and query are a session's stanzas to route onwards.
M.KINDS = { [1] = "reply", [2] = "probe", [3] = "error", [4] = "iq-reply", [5] = "query" }

--- Result codes (ABI.md section 6) by number; an unknown one becomes "CODE_<n>".
M.CODES = {
  [1] = "BAD_INPUT", [2] = "MALFORMED", [3] = "RESTRICTED", [4] = "TOO_LARGE", [5] = "TOO_COMPLEX",
  [6] = "NOT_PRESENCE", [7] = "UNKNOWN_TYPE", [8] = "INVALID_JID", [9] = "NO_FROM", [10] = "NO_TO",
  [11] = "NOT_LOCAL", [12] = "SESSION", [13] = "NOT_DOMAIN", [14] = "NO_FACT_STORE", [15] = "CONFIG",
  [16] = "TOO_MANY_ENTITIES", [17] = "TOO_MANY_RESOURCES", [18] = "CORRUPT", [19] = "HOST",
  [32] = "NO_MACHINE", [33] = "PANIC", [34] = "OTHER",
}

local SUBSCRIPTIONS = { none = 0, to = 1, from = 2, both = 3 }

local function flag(v) return v == false and 0 or 1 end

local function subscription(v)
  local s = math.type(v) == "integer" and v or SUBSCRIPTIONS[v]
  if s == nil then error(("lastseen: subscription must be none, to, from or both, not %s"):format(tostring(v)), 4) end
  return s
end

-- Field converters: Lua values to what string.pack takes.
local CONVERT = { sub = subscription, blocked = flag, hidden = flag }

-- ---- errors ----

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.message end
M.Error = Error

local function new_error(code, message, t)
  t = t or {}
  t.code, t.message = code, message
  t.event = t.event or ""
  t.bad_input = t.bad_input or false
  t.reason = t.reason or message
  return setmetatable(t, Error)
end

--- is_error tells whether v is a lastseen error value.
function M.is_error(v) return getmetatable(v) == Error end

-- ---- encoding ----

local function config_bytes(o)
  local served = o.served or {}
  local parts = { string.pack("<BI4", OP_CONFIG, #served) }
  for _, d in ipairs(served) do parts[#parts + 1] = string.pack("<s4", d) end
  local lim = o.probe_limit or {}
  local opts = { lim.burst or 0, lim.per or 0, o.max_entities or 0, o.max_resources or 0,
                 o.max_bytes or 0, o.max_depth or 0, o.max_attrs or 0, o.journal and 1 or 0,
                 o.authorizer and 1 or 0 } -- 9: facts from the host (version 3)
  parts[#parts + 1] = string.pack("<I4", #opts)
  for _, v in ipairs(opts) do parts[#parts + 1] = string.pack("<i8", v) end
  return table.concat(parts)
end

-- records decodes the journal records that a successful event carries in
-- its data when the journal option is on (ABI.md section 5: u32 n, then n
-- strs); no data means no records.
local function records(data)
  local out = {}
  if data == nil or data == "" then return out end
  local n, i = string.unpack("<I4", data)
  for k = 1, n do out[k], i = string.unpack("<s4", data, i) end
  return out
end

local args = {}

local function event_bytes(ev)
  local spec = EVENTS[ev.type]
  if spec == nil then error(("lastseen: unknown event type %s"):format(tostring(ev.type)), 3) end
  local names = spec.names
  args[1] = spec.op
  for i = 1, #names do
    local f = names[i]
    local v, conv = ev[f], CONVERT[f]
    if conv then v = conv(v) elseif v == nil then v = spec.zero[i] end
    args[i + 1] = v
  end
  return string.pack(spec.fmt, table.unpack(args, 1, #names + 1))
end

-- ---- decoding (ABI.md section 6) ----

local unpack = string.unpack

local function read_result(s, i)
  local code
  code, i = unpack("<B", s, i)
  if code == 0 then
    local n
    n, i = unpack("<I4", s, i)
    local outputs = {}
    for k = 1, n do
      local kind, to, stanza
      kind, to, stanza, i = unpack("<Bs4s4", s, i)
      outputs[k] = { kind = M.KINDS[kind] or kind, to = to, stanza = stanza }
    end
    local data
    data, i = unpack("<s4", s, i)
    return { outputs = outputs, data = data }, i
  end
  local flags, event, reason, dk
  flags, event, reason, dk, i = unpack("<Bs4s4B", s, i)
  local detail
  if dk == 1 then
    local offset, msg
    offset, msg, i = unpack("<i8s4", s, i)
    detail = { offset = offset, msg = msg }
  elseif dk == 2 then
    local input, part, why
    input, part, why, i = unpack("<s4s4s4", s, i)
    detail = { input = input, part = part, reason = why }
  end
  local bad = flags & 1 ~= 0
  local message = bad and ("lastseen: bad %s input: %s"):format(event, reason) or reason
  -- Flag bit 1: an import answered "failed" and the host holds the reason.
  return { error = new_error(M.CODES[code] or ("CODE_" .. code), message,
    { number = code, event = event, bad_input = bad, reason = reason, detail = detail }),
    host_failed = flags & 2 ~= 0 }, i
end

-- ---- modules ----

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local b = f:read("a")
  f:close()
  return b
end

-- The directory of this file, to find ../../wasm/lastseen.wasm in a clone.
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."

--- wasm_path returns the lastseen.wasm loaded by default:
--- $LASTSEEN_WASM, else lastseen.wasm beside this file, else the
--- repository's wasm/lastseen.wasm.
function M.wasm_path()
  local env = os.getenv("LASTSEEN_WASM")
  if env and env ~= "" then return env end
  for _, p in ipairs({ here .. "/lastseen.wasm", here .. "/../../wasm/lastseen.wasm" }) do
    local f = io.open(p, "rb")
    if f then f:close() return p end
  end
  error("lastseen: lastseen.wasm not found beside lastseen.lua nor in ../../wasm; set LASTSEEN_WASM", 2)
end

--- compile compiles a module once, for the wasm option of new: from a
--- path (default: wasm_path()), or from the module's bytes when bytes is
--- true. With quiet, the text of a guest's fatal runtime error is dropped
--- rather than written to stderr. Compiling takes two to four seconds;
--- share the result among machines.
function M.compile(source, bytes, quiet)
  local b = source
  if not bytes then
    local err
    b, err = read_file(source or M.wasm_path())
    if not b then error("lastseen: " .. err, 2) end
  end
  local mod, err = core.compile(b, quiet)
  if not mod then error(new_error("ABI", err), 2) end
  return mod
end

--- now returns the wall-clock time in nanoseconds since the Unix epoch.
M.now = core.now

--- fsync flushes a Lua file handle and fsyncs it to disk: true, or nil
--- and the error text (hosts persist journal records with it).
M.fsync = core.fsync

--- wat2wasm turns WebAssembly text into a module's bytes (tests use it).
M.wat2wasm = core.wat2wasm

-- ---- facts from the host (ABI.md section 5, version 3) ----

-- ANSWER turns an authorizer's answer to each lastseen import into what
-- the import returns (see lastseen_core.c, set_host).
local ANSWER = {
  probe_facts = function(auth, owner, prober)
    local blocked, sub, hidden = auth.probe_facts(owner, prober)
    local s = SUBSCRIPTIONS[sub or "none"]
    if s == nil then error(("probe_facts returned the subscription %s"):format(tostring(sub)), 0) end
    return (blocked and 1 or 0) | (s << 1) | (hidden and 8 or 0)
  end,
  blocks = function(auth, owner, jid) return auth.blocks(owner, jid) and 1 or 0 end,
  subscribers = function(auth, owner)
    if auth.subscribers == nil then return -2 end -- up and down: no lister
    local parts = {}
    for i, c in ipairs(auth.subscribers(owner) or {}) do parts[i] = string.pack("<s4", c) end
    return table.concat(parts)
  end,
}

-- host_function returns the function the C module calls for the imports
-- of self's instance: it asks self's authorizer under pcall and queues the
-- error of a callback that fails, for the result of the event that asked.
local function host_function(self)
  return function(name, owner, other)
    local auth = self._options.authorizer
    if auth == nil then return -1 end
    local ok, v = pcall(ANSWER[name], auth, owner, other)
    if ok then return v end
    local errs = self._host_errors
    errs[#errs + 1] = new_error("HOST", ("lastseen: the authorizer failed in %s: %s"):format(name, tostring(v)), { cause = v })
    return -1
  end
end

--- fact_table returns an in-memory authorizer (the authorizer option)
--- over normalised JIDs, like the Go library's core.MemoryAuth, for tests
--- and small hosts: its set_roster(owner, contact, sub), set_block(owner,
--- jid[, blocked]) and set_hidden(owner[, hidden]) change the facts its
--- probe_facts, blocks and subscribers answer. A server answers from its
--- own storage instead.
function M.fact_table()
  local roster, blocked, hidden = {}, {}, {}
  local t = {}
  local function bare(jid) return jid:match("^[^/]*") end
  function t.set_roster(owner, contact, sub)
    if SUBSCRIPTIONS[sub] == nil then error("lastseen: unknown subscription " .. tostring(sub), 2) end
    roster[owner] = roster[owner] or {}
    roster[owner][contact] = sub ~= "none" and sub or nil
  end
  function t.set_block(owner, jid, on)
    blocked[owner] = blocked[owner] or {}
    blocked[owner][jid] = on ~= false or nil
  end
  function t.set_hidden(owner, on) hidden[owner] = on ~= false or nil end
  -- XEP-0191 section 3.4: an item matches the full JID, its bare JID or its domain.
  function t.blocks(owner, jid)
    local b = blocked[owner]
    if b == nil then return false end
    local bj = bare(jid)
    return (b[jid] or b[bj] or b[bj:match("[^@]*$")]) == true
  end
  function t.probe_facts(owner, prober)
    local r = roster[owner]
    return t.blocks(owner, prober), r and r[bare(prober)] or "none", hidden[owner] == true
  end
  -- The contacts with subscription from or both; the machine drops the
  -- blocked ones and sorts them.
  function t.subscribers(owner)
    local list = {}
    for c, sub in pairs(roster[owner] or {}) do
      if sub == "from" or sub == "both" then list[#list + 1] = c end
    end
    return list
  end
  return t
end

-- ---- the machine ----

local Machine = {}
Machine.__index = Machine
M.Machine = Machine

-- send runs the encoded events in one step and returns their results, or
-- raises for a trap (after restarting), a panic (after reconfiguring) or
-- an ABI failure.
local function send(self, bytes)
  local inst = self._inst
  if self._in_step then
    error(new_error("REENTRY", "lastseen: an authorizer callback called into its machine"), 3)
  end
  if inst == nil then error(new_error("RELEASED", "lastseen: the machine was disposed or could not restart"), 3) end
  self._host_errors = {}
  self._in_step = true
  local ok, status, out, n = pcall(inst.step, inst, bytes)
  self._in_step = false
  if not ok then error(status, 3) end
  if status == nil then
    if out == "trap" then
      self:_restart()
      error(new_error("TRAP", ("lastseen: the WebAssembly instance trapped (%s); the machine restarted empty"):format(n)), 3)
    end
    error(new_error("ABI", n), 3)
  end
  local results, i = {}, 1
  local errs = self._host_errors
  for k = 1, n do
    local r
    r, i = read_result(out, i)
    if r.host_failed and #errs > 0 then
      -- The guest names the import; the callback's error is the reason.
      local e = table.remove(errs, 1)
      e.event = r.error.event
      r.error = e
    end
    results[k] = r
  end
  if status == STATUS_PANIC then
    local last = results[#results]
    local why = last and last.error and last.error.reason or "no detail"
    self:_restart()
    error(new_error("PANIC", ("lastseen: the guest panicked (%s); the machine restarted empty"):format(why)), 3)
  elseif status == STATUS_DECODE then
    error(new_error("ABI", ("lastseen: the guest could not decode event %d"):format(n)), 3)
  elseif status == STATUS_LENGTH then
    error(new_error("ABI", "lastseen: input length out of range"), 3)
  elseif status ~= STATUS_OK then
    error(new_error("ABI", ("lastseen: unknown status %d"):format(status)), 3)
  end
  return results
end

-- start makes a fresh instance configured with self._options (ABI.md
-- section 1).
function Machine:_start()
  local inst, err = self._module:instantiate(self._options.max_memory)
  if not inst then error(new_error("TRAP", "lastseen: instantiating: " .. err), 3) end
  local v, _, msg = inst:abi_version()
  if v ~= M.ABI_VERSION then
    inst:close()
    error(new_error("ABI", ("lastseen.wasm speaks ABI version %s, this binding %d"):format(tostring(v or msg), M.ABI_VERSION)), 3)
  end
  self._inst = inst
  inst:set_host(host_function(self))
  local ok, res = pcall(send, self, config_bytes(self._options))
  if not ok then
    self._inst = nil
    inst:close()
    error(res, 3)
  end
  if res[1].error then
    self._inst = nil
    inst:close()
    error(res[1].error, 3)
  end
end

-- After a trap or a panic: a fresh instance with the same options (ABI.md
-- section 8). If that fails too, the machine is unusable (RELEASED).
function Machine:_restart()
  local old = self._inst
  self._inst = nil
  if old then old:close() end
  pcall(self._start, self)
end

--- new makes a machine in its own instance. options: served (a list of
--- domains, at least one); probe_limit = {burst=, per=ns}; max_entities,
--- max_resources, max_bytes, max_depth, max_attrs (0: the default);
--- journal (true: every call that changes durable state also yields its
--- journal records, Machine:records and batch results' records);
--- authorizer (facts from the host, ABI version 3: a table of functions
--- probe_facts(owner, prober) -> blocked, sub, hidden; blocks(owner, jid)
--- -> boolean; subscribers(owner) -> a list of JIDs, optional, for up and
--- down. The machine calls them when it needs a fact, with normalised
--- JIDs, instead of keeping the facts that roster, block and hide give,
--- which then raise NO_FACT_STORE. A callback that raises makes that call
--- raise HOST, whose cause is the callback's error; it must not call into
--- its machine, which raises REENTRY);
--- max_memory (bytes of guest memory; over it the guest traps); wasm (a
--- module from lastseen.compile, else the default module, compiled once per
--- Lua state).
function M.new(options)
  if type(options) ~= "table" or type(options.served) ~= "table" then
    error("lastseen: options.served must be a list of domains", 2)
  end
  local o = {}
  for k, v in pairs(options) do o[k] = v end
  o.served = { table.unpack(options.served) }
  local mod = o.wasm
  if mod == nil then
    M.default_module = M.default_module or M.compile()
    mod = M.default_module
  end
  local self = setmetatable({ _options = o, _module = mod }, Machine)
  self:_start()
  return self
end

local function one(self, ev)
  local r = send(self, event_bytes(ev))[1]
  if r.error then error(r.error, 3) end
  if not EVENTS[ev.type].data then self._records = records(r.data) end
  return r
end

--- client: a stanza from the local, authenticated session (a full JID). Returns outputs.
function Machine:client(now, session, stanza) return one(self, { type = "client", now = now, session = session, stanza = stanza }).outputs end
--- server: a stanza from another server or a local component, its from verified.
function Machine:server(now, stanza) return one(self, { type = "server", now = now, stanza = stanza }).outputs end
--- close: the session ended without unavailable presence.
function Machine:close(now, session) return one(self, { type = "close", now = now, session = session }).outputs end
--- up: a served domain or component came online; its presence for each subscriber.
function Machine:up(now, jid) return one(self, { type = "up", now = now, jid = jid }).outputs end
--- down: a component went offline; its unavailable presence for each subscriber.
function Machine:down(now, jid) return one(self, { type = "down", now = now, jid = jid }).outputs end
--- roster: owner's roster holds contact with sub "none", "to", "from" or "both".
function Machine:roster(owner, contact, sub) one(self, { type = "roster", owner = owner, contact = contact, sub = sub }) end
--- block: owner blocks jid (or, with blocked false, unblocks it).
function Machine:block(owner, jid, blocked) one(self, { type = "block", owner = owner, jid = jid, blocked = blocked }) end
--- hide: owner opts out of last-seen (or, with hidden false, back in).
function Machine:hide(owner, hidden) one(self, { type = "hide", owner = owner, hidden = hidden }) end
--- limit: from now on, client probes per session: burst, refilled every
--- per ns (buckets refill at the old rate up to now).
function Machine:limit(now, burst, per) one(self, { type = "limit", now = now, burst = burst, per = per }) end
--- state: the deterministic encoding of everything the machine tracks.
function Machine:state() return one(self, { type = "state" }).data end
--- snapshot: the durable state, restorable by any engine.
function Machine:snapshot() return one(self, { type = "snapshot" }).data end
--- restore: loads a snapshot; a damaged one raises CORRUPT and changes nothing.
function Machine:restore(snapshot) one(self, { type = "restore", snapshot = snapshot }) end
--- restarted: the restart rule after restore; returns how many resources went offline.
function Machine:restarted() return (string.unpack("<I4", one(self, { type = "restarted" }).data)) end

--- records: the journal records of the last call that changed durable
--- state (a list of strings, empty when nothing durable changed), when the
--- machine was made with journal = true. Persist them before sending that
--- call's outputs; apply_record replays them on any engine.
function Machine:records() return self._records or {} end
--- apply_record replays one journal record; a damaged one raises CORRUPT
--- and changes nothing.
function Machine:apply_record(record) one(self, { type = "apply", record = record }) end

--- batch runs many events, a buffer-full per step. Each event is a table
--- {type=, ...} with the fields of the method of that name (blocked and
--- hidden for block and hide). Returns one {outputs=}, {data=} or {error=}
--- per event; a refused event does not stop the batch.
function Machine:batch(events)
  local results, i = {}, 1
  local limit = 96 * 1024 -- under the guest's 128 KiB default input buffer: no reserve
  while i <= #events do
    local parts, size, j = {}, 0, i
    while j <= #events do
      local b = event_bytes(events[j])
      if size > 0 and size + #b > limit then break end
      parts[#parts + 1], size, j = b, size + #b, j + 1
    end
    for _, r in ipairs(send(self, table.concat(parts))) do
      local ev = events[#results + 1]
      if r.error then results[#results + 1] = { error = r.error }
      elseif EVENTS[ev.type].data then results[#results + 1] = { data = r.data }
      elseif self._options.journal then results[#results + 1] = { outputs = r.outputs, records = records(r.data) }
      else results[#results + 1] = { outputs = r.outputs } end
    end
    i = j
  end
  return results
end

--- reset replaces the machine with a fresh, empty one in the same
--- instance; with options, they replace the current ones (not wasm). If
--- they are refused, the current machine stays.
function Machine:reset(options)
  local next = self._options
  if options ~= nil then
    next = {}
    for k, v in pairs(options) do next[k] = v end
    next.served = { table.unpack(options.served or {}) }
    next.max_memory = self._options.max_memory
  end
  local r = send(self, config_bytes(next))[1]
  if r.error then error(r.error, 2) end
  self._options = next
end

--- memory returns the bytes of the instance's linear memory.
function Machine:memory() return self._inst and self._inst:memory_size() or 0 end

--- dispose drops the instance; later calls raise RELEASED.
function Machine:dispose()
  if self._inst then self._inst:close() end
  self._inst = nil
end

return M
