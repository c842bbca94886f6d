-- wrk script: client_credentials grants with client_secret_post (credentials come from the
-- environment, set by bench/http.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=" .. os.getenv("BENCH_CLIENT_ID")
  .. "&client_secret=" .. os.getenv("BENCH_CLIENT_SECRET")
