-- mod_lastseen: XEP-0318 last-seen probe answering and XEP-0012 Last
-- Activity for Prosody, by the lastseen presence machine (lastseen.wasm
-- run in-process by the Lua binding in bindings/lua of the lastseen
-- repository).
--
-- The machine is told every client presence (broadcast and directed) and
-- every lost session, and answers every probe (from local clients and
-- from other servers) and every Last Activity get for this host's JIDs:
-- Prosody's own probe answering (mod_presence) and mod_lastactivity never
-- see those stanzas. Authorisation is answered by Prosody's own roster and
-- blocklist storage at the moment the machine asks (the binding's
-- authorizer, ABI version 3 "facts from the host"), so nothing is mirrored
-- at start-up and a roster change needs no event. The durable state is a
-- snapshot plus a journal in Prosody's data directory: each call's
-- records are appended and fsynced before its outputs are routed, so
-- presence history survives a restart.
--
-- Config (per host or global):
--   lastseen_binding_path = "/path/to/lastseen/bindings/lua"  -- lastseen.lua and lastseen_core.so
--   lastseen_wasm = "/path/to/lastseen.wasm"                   -- default: the binding's search
--   lastseen_probe_limit = { burst = 10, per = 6 }             -- client probes per session; per in seconds
--   lastseen_compact_after = 10000                             -- journal records between snapshots
--   lastseen_max_memory = 256 * 1024 * 1024                    -- bytes of guest memory; over it the guest traps
--   lastseen_test_faults = false                               -- tests only: SIGUSR2 makes the guest trap

local st = require "util.stanza";
local xml = require "util.xml";
local jid_split, jid_bare = import("util.jid", "split", "bare");
local rostermanager = require "core.rostermanager";

local binding_path = module:get_option_string("lastseen_binding_path");
if binding_path then
	package.cpath = binding_path .. "/?.so;" .. package.cpath;
	package.path = binding_path .. "/?.lua;" .. package.path;
end
local lastseen = require "lastseen";

local host = module.host;
local limit = module:get_option("lastseen_probe_limit");
local options = { served = { host }, journal = true };
if type(limit) == "table" then
	options.probe_limit = { burst = math.tointeger(limit.burst) or 0,
		per = math.floor((tonumber(limit.per) or 0) * 1e9) };
end
local max_memory = module:get_option_number("lastseen_max_memory");
if max_memory then
	if max_memory < 1 or max_memory ~= math.floor(max_memory) then
		error(("lastseen_max_memory must be a whole number of bytes (got %s)"):format(max_memory));
	end
	options.max_memory = math.tointeger(max_memory);
end
local wasm_path = module:get_option_string("lastseen_wasm");
if wasm_path then options.wasm = lastseen.compile(wasm_path); end

local blocklist_store = module:open_store("blocklist");

-- ---- authorisation, answered from Prosody's storage when asked ----

local function roster_sub(owner_bare, contact_bare)
	local node, h = jid_split(owner_bare);
	if not node or h ~= host then return "none"; end
	local roster = rostermanager.load_roster(node, h);
	local item = roster and roster[contact_bare];
	local sub = item and item.subscription;
	if sub == "to" or sub == "from" or sub == "both" then return sub; end
	return "none";
end

-- blocking returns the blocklist item of owner_bare that covers who (its
-- full JID, bare JID or domain), or nil.
local function blocking(owner_bare, who)
	local node, h = jid_split(owner_bare);
	if not node or h ~= host then return nil; end
	local list = blocklist_store:get(node);
	if not list then return nil; end
	local _, whost, wres = jid_split(who);
	local bare = jid_bare(who);
	if list[who] then return who; end
	if wres and list[bare] then return bare; end
	if list[whost] then return whost; end
	return nil;
end

-- The machine calls these with normalised JIDs whenever a probe, a Last
-- Activity query or the domain's up needs a fact, so every answer reflects
-- the storage at that moment. An error raised here (storage down) fails
-- that one call, which then answers nothing.
options.authorizer = {
	-- A probe or query from prober to the local user owner.
	probe_facts = function(owner, prober)
		return blocking(owner, prober) ~= nil, roster_sub(owner, jid_bare(prober)), false;
	end,
	-- A client's own account blocks its target; also asked for each subscriber of up.
	blocks = function(owner, jid) return blocking(owner, jid) ~= nil; end,
	-- Prosody keeps no roster for a domain itself: up announces to no one.
	subscribers = function() return {}; end,
};

-- ---- persistence: <data>/lastseen/<host>.snapshot and <host>.journal ----

local dir = prosody.paths.data .. "/lastseen";
local lfs = require "lfs";
lfs.mkdir(dir);
local base = dir .. "/" .. host:gsub("[^%w%.%-]", "_");
local snapshot_path, journal_path = base .. ".snapshot", base .. ".journal";

local function read_all(path)
	local f = io.open(path, "rb");
	if not f then return nil; end
	local b = f:read("a");
	f:close();
	return b;
end

-- write_durable writes bytes to path through a temporary file, fsynced
-- and renamed over it, so a crash leaves the old or the new file.
local function write_durable(path, bytes)
	local tmp = path .. ".tmp";
	local f = assert(io.open(tmp, "wb"));
	f:write(bytes);
	assert(lastseen.fsync(f));
	f:close();
	assert(os.rename(tmp, path));
end

local machine = lastseen.new(options);
local journal, journal_records = nil, 0;

-- Past this many records the journal is folded into a new snapshot while
-- running, so that it (and the replay at start) stays bounded.
local COMPACT_AFTER = module:get_option_number("lastseen_compact_after", 10000);
if COMPACT_AFTER < 1 or COMPACT_AFTER ~= math.floor(COMPACT_AFTER) then
	error(("lastseen_compact_after must be a whole number of records, at least 1 (got %s)"):format(COMPACT_AFTER));
end

-- replay restores the snapshot and applies the journal's records (a torn
-- last record, from a crash mid-append, ends the replay). It returns how
-- many records it applied.
local function replay()
	local snap = read_all(snapshot_path);
	if snap and snap ~= "" then machine:restore(snap); end
	local j = read_all(journal_path) or "";
	local i, n = 1, 0;
	while i <= #j do
		local ok, rec, nexti = pcall(string.unpack, "<s4", j, i);
		if not ok then
			module:log("warn", "lastseen: journal ends in a torn record after %d records; ignoring its tail", n);
			break;
		end
		machine:apply_record(rec);
		i, n = nexti, n + 1;
	end
	return n;
end

-- compact writes the machine's state as the snapshot and starts an empty
-- journal; why ("start", "threshold", "stop") goes to the log line, which
-- the e2e suite counts.
local function compact(why)
	local snap = machine:snapshot();
	write_durable(snapshot_path, snap);
	if journal then journal:close(); end
	journal = assert(io.open(journal_path, "wb"));
	assert(lastseen.fsync(journal));
	module:log("info", "lastseen: compacted (%s): snapshot of %d bytes, journal restarted after %d records", why, #snap, journal_records);
	journal_records = 0;
end

-- load runs at start: replay, the restart rule (resources online when the
-- server stopped go offline then), and a compaction.
local function load()
	local n = replay();
	local offline = machine:restarted();
	compact("start");
	module:log("info", "lastseen: state loaded (%d journal records, %d resources taken offline)", n, offline);
end

-- recover runs after a guest trap or panic, when the binding has restarted
-- the machine empty: everything durable is on disk (each call's records
-- are fsynced before its outputs leave), so the state is replayed from
-- there, and the sessions still connected stay online.
local function recover()
	local ok, err = pcall(replay);
	if ok then
		module:log("warn", "lastseen: the machine restarted after a fault; state replayed from disk (%d records)", err);
	else
		module:log("error", "lastseen: replaying state after a fault failed: %s", tostring(err));
	end
end

local function persist(records)
	if not records or #records == 0 then return; end
	for _, r in ipairs(records) do journal:write(string.pack("<s4", r)); end
	local ok, err = lastseen.fsync(journal);
	if not ok then module:log("error", "lastseen: journal fsync failed: %s", err); end
	journal_records = journal_records + #records;
	if journal_records >= COMPACT_AFTER then compact("threshold"); end
end

-- ---- running events and routing outputs ----

-- route sends every output. An answer (reply, error, iq-reply) to a local
-- full JID goes straight to that session: through the router, mod_presence
-- would swallow an unsubscribed reply to a user with no roster item for
-- the prober (RFC 6121 3.2.3's inbound handling, not meant for answers).
-- Everything else (probes and queries onwards, answers to other servers or
-- bare JIDs) goes through the router.
local ANSWER = { reply = true, error = true, ["iq-reply"] = true };
local function route(outputs)
	for _, o in ipairs(outputs) do
		local s, err = xml.parse(o.stanza);
		if s then
			module:log("debug", "lastseen: %s to %s: %s", o.kind, o.to, o.stanza);
			local session = ANSWER[o.kind] and prosody.full_sessions[o.to];
			if session then
				session.send(s);
			else
				module:send(s);
			end
		else
			module:log("error", "lastseen: unparsable output for %s: %s", o.to, err);
		end
	end
end

-- run sends ev, persists its journal records, then routes its outputs.
-- It returns the outputs, or nil and the error.
local function run(ev)
	local ok, results = pcall(machine.batch, machine, { ev });
	if not ok then
		module:log("error", "lastseen: %s", tostring(results));
		if lastseen.is_error(results) and (results.code == "TRAP" or results.code == "PANIC") then recover(); end
		return nil, results;
	end
	local r = results[1];
	if r.error then
		if r.error.code == "HOST" then module:log("error", "lastseen: %s", tostring(r.error)); end
		return nil, r.error;
	end
	persist(r.records);
	route(r.outputs);
	return r.outputs;
end

local function now() return lastseen.now(); end

-- A client's stanza as the machine expects it: without the from Prosody
-- stamped on it, and a presence to the sender's own bare JID counted as
-- broadcast (RFC 6121 4.2.2).
local function client_xml(origin, stanza)
	local s = st.clone(stanza);
	s.attr.from = nil;
	if s.name == "presence" and (s.attr.type == nil or s.attr.type == "unavailable")
		and s.attr.to == origin.username .. "@" .. origin.host then
		s.attr.to = nil;
	end
	return tostring(s);
end

-- ---- hooks ----

local function on_client_presence(event)
	local origin, stanza = event.origin, event.stanza;
	if origin.type ~= "c2s" or not origin.full_jid then return; end
	local t = stanza.attr.type;
	if t == "probe" then
		local _, err = run({ type = "client", now = now(), session = origin.full_jid, stanza = client_xml(origin, stanza) });
		if err then
			-- The machine answers nothing for a probe it refuses; the client
			-- is told, as Prosody tells it about any stanza it cannot take.
			module:log("debug", "lastseen refused a client probe: %s", tostring(err));
			if lastseen.is_error(err) and err.bad_input then
				origin.send(st.error_reply(stanza, "modify", "bad-request", err.reason));
			else
				origin.send(st.error_reply(stanza, "wait", "internal-server-error"));
			end
		end
		return true;
	elseif t == nil or t == "unavailable" then
		local _, err = run({ type = "client", now = now(), session = origin.full_jid, stanza = client_xml(origin, stanza) });
		if err then module:log("debug", "lastseen refused a client presence: %s", tostring(err)); end
	end
end

local function on_inbound_presence(event)
	local origin, stanza = event.origin, event.stanza;
	if stanza.attr.type ~= "probe" or origin.type ~= "s2sin" then return; end
	local _, err = run({ type = "server", now = now(), stanza = tostring(stanza) });
	-- RFC 6121 4.3.2: a probe that cannot be answered is ignored.
	if err then module:log("debug", "lastseen refused a server probe: %s", tostring(err)); end
	return true;
end

local function on_last_activity(event)
	local origin, stanza = event.origin, event.stanza;
	local outs, err;
	if origin.type == "c2s" and origin.full_jid then
		outs, err = run({ type = "client", now = now(), session = origin.full_jid, stanza = client_xml(origin, stanza) });
	elseif origin.type == "s2sin" then
		outs, err = run({ type = "server", now = now(), stanza = tostring(stanza) });
	else
		return;
	end
	if err then
		module:log("debug", "lastseen refused a Last Activity query: %s", tostring(err));
		origin.send(st.error_reply(stanza, "modify", "bad-request"));
	end
	return true;
end

local PRIORITY = 100; -- above mod_presence and mod_lastactivity (0 and 10)

module:hook("pre-presence/bare", on_client_presence, PRIORITY);
module:hook("pre-presence/full", on_client_presence, PRIORITY);
module:hook("pre-presence/host", on_client_presence, PRIORITY);
module:hook("presence/bare", on_inbound_presence, PRIORITY);
module:hook("presence/full", on_inbound_presence, PRIORITY);
module:hook("presence/host", on_inbound_presence, PRIORITY);
module:hook("iq-get/bare/jabber:iq:last:query", on_last_activity, PRIORITY);
-- The domain's Last Activity is its uptime (XEP-0012 section 5), the same
-- start as its presence stamp: answered here rather than by mod_uptime.
module:hook("iq-get/host/jabber:iq:last:query", on_last_activity, PRIORITY);

-- A session that ends without unavailable presence (connection lost, or
-- closed): the machine's close, before mod_presence sends an unavailable
-- presence in its name (which the machine then refuses: the session is gone).
module:hook("resource-unbind", function(event)
	local session = event.session;
	if not session.full_jid or session.host ~= host then return; end
	local _, err = run({ type = "close", now = now(), session = session.full_jid });
	if err then module:log("debug", "lastseen close %s: %s", session.full_jid, tostring(err)); end
end, PRIORITY);

-- announce starts the domain's uptime. The restored state may still hold
-- the domain as up since an earlier start (the restart rule takes only
-- resources offline, and a repeated up keeps the first time, core/CHOICES.md
-- 14), so it goes down first: without that, every probe and uptime query
-- after a restart would count from the first start ever.
local function announce()
	local t = now();
	for _, ev in ipairs({ "down", "up" }) do
		local _, err = run({ type = ev, now = t, jid = host });
		if err then module:log("error", "lastseen: %s %s: %s", ev, host, tostring(err)); end
	end
end

-- A fault for tests only (lastseen_test_faults = true; off by default and
-- in every shipped config): SIGUSR2, which only root and Prosody's own user
-- can send, makes the guest trap by handing it one stanza as large as its
-- whole memory limit, so a test can watch the recovery above (recover)
-- inside a running server. Nothing a user sends can reach it.
if module:get_option_boolean("lastseen_test_faults", false) then
	if not options.max_memory then
		error("lastseen_test_faults needs lastseen_max_memory: the fault is the guest running out of it");
	end
	module:hook_global("signal/SIGUSR2", function()
		module:log("warn", "lastseen: SIGUSR2 with lastseen_test_faults on: making the guest trap");
		local huge = "<presence><status>" .. string.rep("x", options.max_memory) .. "</status></presence>";
		local _, err = run({ type = "client", now = now(), session = "fault@" .. host .. "/test", stanza = huge });
		if not (lastseen.is_error(err) and err.code == "TRAP") then
			module:log("error", "lastseen: the test fault did not trap the guest: %s", tostring(err));
		end
	end);
end

load();

-- The domain's uptime starts when the server does (a module reloaded into a
-- running server keeps the restored state and announces nothing).
module:hook_global("server-started", announce);

module:hook_global("server-stopping", function() compact("stop"); end);

module:log("info", "lastseen: answering probes and Last Activity for %s", host);
