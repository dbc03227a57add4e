-- POST /token grant_type=client_credentials&scope=$SCOPE, client_secret_basic with $BASIC.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.path = "/token"
wrk.body = "grant_type=client_credentials&scope=" .. os.getenv("SCOPE")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")

function response(status, headers, body)
  if note_status(status, body) and not string.find(body, '"access_token"', 1, true) then
    note_status(599, "no access_token: " .. body)
  end
end
