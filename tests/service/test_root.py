"""``/``: a browser lands on the web pages (their login when signed out), a program on an index."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_browser_at_the_root_lands_on_the_login_page(client: TestClient) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    root = client.get("/", headers={"Accept": browser}, follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (303, "/ui")
    landed = client.get("/", headers={"Accept": browser})
    assert landed.status_code == 200
    assert landed.url.path == "/ui/login"
    assert "text/html" in landed.headers["content-type"]
    anything = client.get("/", headers={"Accept": "*/*"}, follow_redirects=False)
    assert anything.headers["location"] == "/ui"


def test_a_program_asking_for_json_gets_an_index_of_the_entry_points(client: TestClient) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json() == {
        "pages": "/ui",
        "api": "/api/v1",
        "openapi": "/api/v1/openapi.json",
        "health": "/healthz",
    }
    for name in ("pages", "openapi", "health"):  # "api" is the prefix of every API path
        assert client.get(response.json()[name], follow_redirects=False).status_code in (200, 303)
