-- Assertions for the Lua binding's tests.
local C = {}

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end
C.show = show

--- eq raises unless got and want are equal (tables compared deeply).
function C.eq(got, want, what)
  if show(got) ~= show(want) then
    error(("%s:\n  got  %s\n  want %s"):format(what or "value", show(got), show(want)), 2)
  end
end

--- raises calls fn and returns the lastseen error value it raised; it
--- raises if fn returned or raised something else.
function C.raises(fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then error("no error raised", 2) end
  if not require("lastseen").is_error(e) then error("raised a non-lastseen error: " .. tostring(e), 2) end
  return e
end

return C
