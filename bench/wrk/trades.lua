-- wrk load for POST /v1/networks/{network}/trades. Every request carries a fresh
-- Idempotency-Key (thread id, counter, random), except the deliberate replays of the mix.
--   BENCH_TOKEN, BENCH_NETWORK    the operator key and the network code
--   BENCH_WORKLOAD                uniform | busy10 | hot | mix
--   BENCH_ACCOUNTS                members a0 .. a{N-1}
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

function init(args)
  token = os.getenv("BENCH_TOKEN")
  network = os.getenv("BENCH_NETWORK")
  workload = os.getenv("BENCH_WORKLOAD") or "uniform"
  accounts = tonumber(os.getenv("BENCH_ACCOUNTS") or "10000")
  path = "/v1/networks/" .. network .. "/trades"
  counter = 0
  math.randomseed(os.time() * 1000 + id)
  last_key, last_body = nil, nil
  holds = {}
end

local function member()
  return "a" .. math.random(0, accounts - 1)
end

local function post(target, key, body)
  return wrk.format("POST", target, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key,
  }, body)
end

local function trade(payer, payee, extra)
  counter = counter + 1
  local key = id .. "-" .. counter .. "-" .. math.random(1, 1000000000)
  local body = '{"payer":"' .. payer .. '","payee":"' .. payee .. '","amount":1' .. (extra or "") .. '}'
  return key, body
end

function request()
  local payer, payee = member(), member()
  if workload == "busy10" then
    payee = "busy" .. math.random(0, 9)
  elseif workload == "hot" then
    payee = "hot"
  elseif workload == "mix" then
    local roll = math.random(1, 100)
    if roll <= 5 and last_key then
      return post(path, last_key, last_body)                      -- 5%: an idempotent replay
    elseif roll <= 10 then
      payer = "poor" .. math.random(0, 99)                         -- 5%: refused by a limit
    elseif roll <= 15 and #holds > 0 then
      local id_ = table.remove(holds, 1)                           -- resolve a hold: post or void
      local action = (math.random(1, 2) == 1) and "post" or "void"
      counter = counter + 1
      return post(path .. "/" .. id_ .. "/" .. action, id .. "-r-" .. counter, "{}")
    elseif roll <= 20 then
      local key, body = trade(payer, payee, ',"pending":true')     -- hold it
      return post(path, key, body)
    end
  end
  local key, body = trade(payer, payee)
  last_key, last_body = key, body
  return post(path, key, body)
end

function response(status, headers, body)
  if workload == "mix" and status == 201 and string.find(body, '"status":"pending"', 1, true) then
    local hold = string.match(body, '"id":"([^"]+)"')
    if hold and #holds < 1000 then table.insert(holds, hold) end
  end
end
