"""Voilà's template static files on the service answer a malformed or `../` path with a
404, never a 500 (issue 9: Voilà's handler asserted on them), and still serve the
dashboards' files."""

import http.client

import pytest

TRAVERSALS = [
    "/voila/templates/../x",
    "/voila/templates/interview_buddy/static/../../../../etc/passwd",
    "/voila/templates/lab/static/..%2F..%2F..%2Fconf.json",
    "/voila/templates/..%2F/static/x",
    "/voila/templates/lab/static/",
    "/voila/templates/x",
    "/voila/templates/lab/static/a%5c..%5c..%5cb",
]


def raw_get(url: str, path: str) -> int:
    """GET `path` exactly as written (httpx would resolve the `..` first)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("path", TRAVERSALS)
def test_voila_static_answers_dot_dot_paths_with_404_not_500(live, path):
    assert raw_get(live.url, path) == 404


def test_voila_static_still_serves_the_templates_files(live):
    assert raw_get(live.url, "/voila/templates/lab/static/voila.js") == 200
    assert raw_get(live.url, "/voila/templates/interview_buddy/static/interview_buddy.css") == 200
