-- The hub's public routes under load, each request with a credential used once or cycled:
--   wrk -s hub.lua URL -- MODE IN OUT [AUTH]
-- MODE authorize: GET the URL (a hub session in -H Cookie); each Location's code and state
--                 are appended to OUT as "code<TAB>state".
-- MODE code:      POST code=&state= from each line of IN (once each) with Basic AUTH; each
--                 200's tokens go to OUT as "access<TAB>refresh". Stops when IN runs out.
-- MODE refresh:   POST grant_type=refresh_token with each refresh token of IN (once each).
-- MODE userinfo:  GET the URL with "Authorization: Bearer <access>", cycling through IN.
-- done() prints "BENCH ok=<2xx/3xx answers> us=<duration>" for the caller to read.
local mode, items, out, auth = nil, {}, nil, nil
local i = 0
ok = 0 -- a global: done() reads it with thread:get

function setup(thread)
  bench_thread = thread
end

function init(args)
  mode = args[1]
  if args[2] ~= "-" then
    for line in io.lines(args[2]) do
      local a, b = line:match("^([^\t]+)\t?(.*)$")
      items[#items + 1] = { a, b }
    end
  end
  if args[3] ~= "-" then
    out = io.open(args[3], "a")
    out:setvbuf("line")
  end
  auth = args[4]
  if mode ~= "authorize" and #items == 0 then
    error("hub.lua: nothing to send: " .. args[2] .. " is empty")
  end
end

-- wrk.format replaces the command line's -H headers when given some: keep them.
local function with_defaults(headers)
  for name, value in pairs(wrk.headers) do
    if headers[name] == nil then
      headers[name] = value
    end
  end
  return headers
end

local function next_item(cycle)
  i = i + 1
  if i > #items then
    if cycle then
      i = 1
    else
      wrk.thread:stop()
      i = #items
    end
  end
  return items[i]
end

function request()
  if mode == "authorize" then
    return wrk.format("GET", nil, with_defaults({ ["Accept"] = "text/html" }))
  elseif mode == "code" then
    local item = next_item(false)
    local body = "code=" .. item[1] .. "&state=" .. item[2]
    return wrk.format("POST", nil, { ["Authorization"] = auth, ["Content-Type"] = "text/plain" }, body)
  elseif mode == "refresh" then
    local item = next_item(false)
    local body = "grant_type=refresh_token&refresh_token=" .. item[2]
    return wrk.format("POST", nil, {
      ["Authorization"] = auth,
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, body)
  else
    local item = next_item(true)
    return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. item[1] })
  end
end

function response(status, headers, body)
  if status >= 400 then
    return
  end
  ok = ok + 1
  if out == nil then
    return
  end
  if mode == "authorize" then
    local location = headers["location"] or headers["Location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    local state = location:match("[?&]state=([^&]+)")
    if code then
      out:write(code, "\t", state or "", "\n")
    end
  else
    local access = body:match('"access_token"%s*:%s*"([^"]+)"')
    local refresh = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if access and refresh then
      out:write(access, "\t", refresh, "\n")
    end
  end
end

function done(summary, latency, requests)
  io.write(string.format("BENCH ok=%d us=%d\n", bench_thread:get("ok"), summary.duration))
end
