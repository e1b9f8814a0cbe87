"""The wire contract every side shares: request and response shapes, errors, the
challenge format, and the REST client. It imports nothing else of ours."""
