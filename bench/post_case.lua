-- wrk script: POST /v1/case-analyses, each request a new case analysis of its own reference
-- (one row, one audit entry, one outbox event, findings encrypted) in the procedure
-- KQE_BENCH_PROCEDURE, as its office.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  wrk.headers["Content-Type"] = "application/json"
  procedure = os.getenv("KQE_BENCH_PROCEDURE")
  run = os.getenv("KQE_BENCH_RUN") or "0"
  n = 0
end

function request()
  n = n + 1
  local body = string.format(
    '{"procedure_id":"%s","case_reference":"BENCH-%s-%d-%d","selection":"random",' ..
    '"closed_month":"2022-05","child":{"sex":"weiblich","birth_month":"2015-03"},' ..
    '"parents_age_group":"27_und_aelter","reported_by":"schule",' ..
    '"result":"latente_gefaehrdung","endangerment_forms":["vernachlaessigung"],' ..
    '"process":{"days_to_first_contact":2,"direct_impression":true,' ..
    '"several_professionals":true},"ratings":{"intake":2,"documentation":3},' ..
    '"learning_themes":["documentation"],"findings":"Benchmark: a finding of some length, ' ..
    'encrypted at rest like every other."}', procedure, run, tid, n)
  -- nil headers: wrk.headers, which hold -H's Authorization too
  return wrk.format("POST", "/v1/case-analyses", nil, body)
end
