-- GET the URL until LIMIT answers have come back, then idle until wrk's duration ends; each
-- request with the next line of FILE as its Cookie header (none when FILE is "-"), starting
-- after line START (0 by default: a run that continues another passes how many it sent, so
-- every line is sent in turn, not the first ones again):
--   wrk -s counted.lua URL -- FILE LIMIT [START]
local lines, i, limit, seen = {}, 0, 0, 0

function init(args)
  if args[1] ~= "-" then
    for line in io.lines(args[1]) do
      lines[#lines + 1] = line
    end
  end
  limit = tonumber(args[2])
  if #lines > 0 then
    i = (tonumber(args[3] or "0") or 0) % #lines
  end
end

function request()
  local headers = { ["Accept"] = "text/html" }
  if #lines > 0 then
    i = i % #lines + 1
    headers["Cookie"] = lines[i]
  end
  return wrk.format("GET", nil, headers)
end

function response(status, headers, body)
  seen = seen + 1
  if seen >= limit then
    wrk.thread:stop()
  end
end
