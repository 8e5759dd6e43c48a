-- wrk script: verify the codes a send.lua run (with OTP set) stored, each msisdn once, in the
-- same order. Env: APP_ID, API_KEY, OTP.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  counter = 0
  local ranges = { "62812", "62813", "62815", "62816", "62817", "62818", "62819", "62821" }
  prefix = ranges[tid]
  wrk.method = "POST"
  wrk.path = "/v2/whatsapp/otp/verify"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["App-ID"] = os.getenv("APP_ID")
  wrk.headers["API-Key"] = os.getenv("API_KEY")
  otp = os.getenv("OTP")
end

-- The counter's digits permuted (7919 is prime to 10^8: no two counters collide), so numbers
-- spread over every number block and range like real users, not a sequential burst.
local function number()
  return string.format("%s%08d", prefix, (counter * 7919 + 13) % 100000000)
end

function request()
  counter = counter + 1
  local body = string.format('{"msisdn":"%s","otp":"%s","challenge":"login"}', number(), otp)
  return wrk.format(nil, nil, nil, body)
end
