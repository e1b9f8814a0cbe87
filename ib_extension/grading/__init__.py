"""Grading a submitted notebook against a challenge's tests, in a separate kernel."""
