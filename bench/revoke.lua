-- POST /revoke (RFC 7009) of refresh tokens, client_secret_basic with $BASIC. $POOL is a file of
-- refresh tokens; the script cycles through it, so after the first pass each revocation finds a
-- family already revoked: the lookup and the update run all the same (the answer is 200 either
-- way, RFC 7009 §2.2).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local pool = {}
for line in io.lines(os.getenv("POOL")) do
  if line ~= "" then table.insert(pool, line) end
end
local next_index = 1

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Basic " .. os.getenv("BASIC"),
}

function request()
  local token = pool[next_index] or "pool-empty"
  next_index = next_index % #pool + 1
  return wrk.format("POST", "/revoke", headers, "token_type_hint=refresh_token&token=" .. token)
end

function response(status, headers, body)
  note_status(status, body)
end
