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

function request()
  counter = counter + 1
  local body = string.format('{"msisdn":"%s%08d","otp":"%s","challenge":"login"}', prefix, counter, otp)
  return wrk.format(nil, nil, nil, body)
end
