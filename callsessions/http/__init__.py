"""One request: transport, auth, retry policy, rate limiting, the request pipeline."""
