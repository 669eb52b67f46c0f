"""The ceiling for the load test: a bare FastAPI endpoint, served the same way as Refuge."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
def bare() -> dict[str, str]:
    """Answer at once."""
    return {"status": "ok"}
