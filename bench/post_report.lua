-- wrk script: POST /v1/reports with a valid body (one job + outbox row per request).
wrk.method = "POST"
wrk.body = '{"scope":"state","period":"2024"}'
wrk.headers["Content-Type"] = "application/json"
