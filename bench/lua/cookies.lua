-- GET the URL with each line of a file as the Cookie header, in turn:
--   wrk -s cookies.lua URL -- FILE
local lines, i = {}, 0

function init(args)
  for line in io.lines(args[1]) do
    lines[#lines + 1] = line
  end
end

function request()
  i = i % #lines + 1
  return wrk.format("GET", nil, { ["Cookie"] = lines[i], ["Accept"] = "text/html" })
end
