-- Shared by the bench/*.lua scripts: counts responses that are not 2xx (wrk itself only counts
-- status >= 400 as "Non-2xx or 3xx responses"), keeps the first bad answer for the log, and
-- prints both at the end as lines the report parser reads:
--   bench-bad-status: N
--   bench-first-bad: <status> <first 200 bytes of the body>
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

bad = 0
first_bad = ""

function note_status(status, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
    return false
  end
  return true
end

function done(summary, latency, requests)
  local total, first = 0, ""
  for _, t in ipairs(threads) do
    total = total + (t:get("bad") or 0)
    local f = t:get("first_bad") or ""
    if first == "" then first = f end
  end
  io.write(string.format("bench-bad-status: %d\n", total))
  if first ~= "" then
    io.write("bench-first-bad: " .. first:gsub("\n", " ") .. "\n")
  end
end
