-- Runs every *_test.lua beside this file (or the files named on the
-- command line) in one Lua state: lua5.4 bindings/lua/test/run.lua
-- Each test file returns a list of {name, function}; a test fails by
-- raising. Prints one line per failure and "N passed, N failed"; exits 1 on
-- any failure.
local dir = (arg[0]:match("^(.*)/[^/]*$")) or "."
package.path = dir .. "/../?.lua;" .. dir .. "/?.lua;" .. package.path
package.cpath = dir .. "/../?.so;" .. package.cpath

local files = {}
if #arg > 0 then
  for i = 1, #arg do files[#files + 1] = arg[i] end
else
  local p = io.popen('ls "' .. dir .. '"/*_test.lua')
  for f in p:lines() do files[#files + 1] = f end
  p:close()
end

local passed, failed = 0, 0
for _, file in ipairs(files) do
  local tests = dofile(file)
  for _, t in ipairs(tests) do
    local ok, err = xpcall(t[2], function(e) return debug.traceback(tostring(e), 2) end)
    if ok then
      passed = passed + 1
    else
      failed = failed + 1
      print(("FAIL %s: %s\n%s"):format(file:match("[^/]*$"), t[1], err))
    end
  end
end
print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
