-- POST <INTROSPECT_PATH> token=$TOKEN (RFC 7662), authenticated with HTTP Basic $BASIC
-- (base64 of "client_id:secret"). Same request shape for onyx-id (/introspect) and the peer
-- (/token/introspection).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.path = os.getenv("INTROSPECT_PATH") or "/introspect"
wrk.body = "token=" .. os.getenv("TOKEN") .. "&token_type_hint=access_token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")

function response(status, headers, body)
  -- An inactive answer is a 200 too: count it as a failure, the case measures active tokens.
  if note_status(status, body) and not string.find(body, '"active":true', 1, true) then
    note_status(599, "inactive: " .. body)
  end
end
