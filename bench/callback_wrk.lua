-- wrk script for bench/callback_bench.py: the threads post the pre-signed, pre-encrypted
-- callbacks of the payload file (one per line: "path?query<TAB>body"), each thread its own
-- share, each callback once; `done` prints the figures as one JSON line. The pool must be
-- larger than what the run can send (the bench checks): past its share a thread would
-- resend its last callback, a replay the server stores once.
-- usage: wrk -t T -c C -d 10s -s callback_wrk.lua URL -- PAYLOAD_FILE T [TYPE [HEADER VALUE]]

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  -- optional: a content type and one more header (Telegram's secret token)
  local headers = {["Content-Type"] = args[3] or "text/xml"}
  if args[4] then headers[args[4]] = args[5] end
  items, sent = {}, 0
  local n = 0
  for line in io.lines(file) do
    if (n % nthreads) + 1 == id then
      local tab = line:find("\t", 1, true)
      items[#items + 1] = wrk.format("POST", line:sub(1, tab - 1), headers,
                                     line:sub(tab + 1))
    end
    n = n + 1
  end
end

function request()
  sent = sent + 1
  return items[math.min(sent, #items)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.2f, "p99_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
