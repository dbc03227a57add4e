-- DELETE /api/v1/grants/{sub} (the grants API: the partner gives up a user's whole grant),
-- client_secret_basic with $BASIC. $POOL is a file of subjects, each with an active grant of
-- the app; each request ends a different one, so each one changes consent (its permissions
-- revoked, their history appended, and a consent.revoked event enqueued). When the pool runs
-- out the script starts over, and a DELETE of an ended grant changes nothing: consent_events.py
-- sizes the pool for the run and reports a run that went past it.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local pool = {}
for line in io.lines(os.getenv("POOL")) do
  if line ~= "" then table.insert(pool, line) end
end
local next_index = 1

local headers = { ["Authorization"] = "Basic " .. os.getenv("BASIC") }

function request()
  local sub = pool[next_index] or "pool-empty"
  next_index = next_index % #pool + 1
  return wrk.format("DELETE", "/api/v1/grants/" .. sub, headers)
end

function response(status, headers, body)
  note_status(status, body)
end
