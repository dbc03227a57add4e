-- POST /token grant_type=client_credentials&scope=$SCOPE, client_secret_basic with $BASIC, and a
-- DPoP proof (RFC 9449) per request: the server verifies it, records its jti and binds the
-- token (token_type DPoP). Each proof is good once, so the script takes them from $POOL, a file
-- of fresh proofs, one per line (bench/dpop_proofs.rs, made just before the run: their iat must
-- be inside the server's window). An empty pool sends "pool-empty" (a 400, counted).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local pool = {}
for line in io.lines(os.getenv("POOL")) do
  if line ~= "" then table.insert(pool, line) end
end

local body = "grant_type=client_credentials&scope=" .. os.getenv("SCOPE")
local basic = "Basic " .. os.getenv("BASIC")

function request()
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = basic,
    ["DPoP"] = table.remove(pool) or "pool-empty",
  }
  return wrk.format("POST", "/token", headers, body)
end

function response(status, headers, body)
  if note_status(status, body) and not string.find(body, '"token_type":"DPoP"', 1, true) then
    note_status(599, "no DPoP-bound token: " .. body)
  end
end
