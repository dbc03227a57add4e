-- GET /.well-known/openid-configuration: the HTTP floor of each server.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/.well-known/openid-configuration"

function response(status, headers, body)
  note_status(status, body)
end
