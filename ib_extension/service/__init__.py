"""The ib service: sessions, budget, clock, the AI gateway, the log (DuckDB) and the
HTTP API, as a Jupyter server extension."""
