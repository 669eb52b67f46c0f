"""Route modules, one router each.

Each router carries the full prefix itself, so that ``scope["route"].path`` is the whole
template (FastAPI ≥ 0.160 keeps an include prefix outside the route).
"""

API_PREFIX = "/api/v1"
