"""Request and response bodies of the API.

Request bodies refuse unknown fields (422), so a client cannot smuggle in data we do not
define. Responses are built explicitly from domain objects, never returned as ORM rows.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shelters.identity import Role

T = TypeVar("T")

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (OAuth2 token type, not a secret)
    expires_in: int = Field(description="Seconds until the token expires.")


class MeOut(BaseModel):
    id: int
    username: str
    role: Role
    organization_id: int | None
    shelter_ids: list[int]


class UserIn(Strict):
    username: Username
    password: Annotated[str, StringConstraints(min_length=12, max_length=256)] = Field(
        description="Write-only; at least 12 characters."
    )
    role: Role
    organization_id: int | None = None
    shelter_ids: list[int] = Field(default_factory=list, max_length=500)


UserOut = MeOut


class ApiKeyOut(BaseModel):
    token: str = Field(description="Shown once: only its hash is kept.")


class RegionIn(Strict):
    code: Slug
    name: Label
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class RegionOut(BaseModel):
    code: str
    name: str
    lat: float
    lon: float


class OrganizationIn(Strict):
    name: Label
    kind: Literal["ngo", "state", "international", "funder"]


class OrganizationOut(BaseModel):
    id: int
    name: str
    kind: str


class ServiceOut(BaseModel):
    code: str
    label: str


class HealthOut(BaseModel):
    status: Literal["ok"]
