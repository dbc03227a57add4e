-- POST /token grant_type=refresh_token, client_secret_basic with $BASIC. Refresh tokens rotate
-- (each is good once), so the script keeps a pool: request() takes a token, response() puts the
-- successor from the answer back. $POOL is a file of fresh refresh tokens, one per line, at
-- least as many as connections; a pool is spent by one wrk run (tokens in flight at the end are
-- lost), so every run gets its own file. An empty pool sends "pool-empty" (a 400, counted).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local pool = {}
for line in io.lines(os.getenv("POOL")) do
  if line ~= "" then table.insert(pool, line) end
end

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Basic " .. os.getenv("BASIC"),
}

function request()
  local token = table.remove(pool) or "pool-empty"
  return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  if note_status(status, body) then
    local next_token = string.match(body, '"refresh_token":"([^"]+)"')
    if next_token then
      table.insert(pool, next_token)
    else
      note_status(599, "no refresh_token: " .. body)
    end
  end
end
