"""OpenAPI links: how the id a response returns feeds the next operation.

They tell clients (and the stateful fuzzer, tests/service/test_fuzz.py) which calls follow
which: create a case, read it back, ask for a placement request for it, match that, accept the
placement, and so on.
"""

from __future__ import annotations

from typing import Any

from service.routes import API_PREFIX

# (method, path of the source, status) -> [(link name, method, path of the target, id parameter
# or "body:<field>", runtime expression)]
_P = API_PREFIX
LINKS: dict[tuple[str, str, str], list[tuple[str, str, str, str, str]]] = {
    ("post", f"{_P}/cases", "201"): [
        ("GetCase", "get", f"{_P}/cases/{{case_id}}", "case_id", "$response.body#/id"),
        ("PatchCase", "patch", f"{_P}/cases/{{case_id}}", "case_id", "$response.body#/id"),
        (
            "RequestPlacement",
            "post",
            f"{_P}/placement-requests",
            "body:case_id",
            "$response.body#/id",
        ),
    ],
    ("post", f"{_P}/placement-requests", "201"): [
        (
            "GetRequest",
            "get",
            f"{_P}/placement-requests/{{request_id}}",
            "request_id",
            "$response.body#/id",
        ),
        (
            "MatchRequest",
            "post",
            f"{_P}/placement-requests/{{request_id}}/match",
            "request_id",
            "$response.body#/id",
        ),
        (
            "CancelRequest",
            "post",
            f"{_P}/placement-requests/{{request_id}}/cancel",
            "request_id",
            "$response.body#/id",
        ),
    ],
    ("post", f"{_P}/placement-requests/{{request_id}}/match", "200"): [
        (
            f"{verb.title()}Placement",
            method,
            f"{_P}/placements/{{placement_id}}{suffix}",
            "placement_id",
            "$response.body#/placement/id",
        )
        for verb, method, suffix in (
            ("get", "get", ""),
            ("accept", "post", "/accept"),
            ("decline", "post", "/decline"),
            ("cancel", "post", "/cancel"),
        )
    ],
    ("post", f"{_P}/placements/{{placement_id}}/accept", "200"): [
        (
            "AdmitPlacement",
            "post",
            f"{_P}/placements/{{placement_id}}/admit",
            "placement_id",
            "$response.body#/id",
        ),
    ],
    ("post", f"{_P}/placements/{{placement_id}}/admit", "200"): [
        (
            "DischargePlacement",
            "post",
            f"{_P}/placements/{{placement_id}}/discharge",
            "placement_id",
            "$response.body#/id",
        ),
    ],
    ("post", f"{_P}/organizations", "201"): [
        (
            "GetOrganization",
            "get",
            f"{_P}/organizations/{{organization_id}}",
            "organization_id",
            "$response.body#/id",
        ),
    ],
    ("post", f"{_P}/shelters", "201"): [
        ("GetShelter", "get", f"{_P}/shelters/{{shelter_id}}", "shelter_id", "$response.body#/id"),
        (
            "PatchShelter",
            "patch",
            f"{_P}/shelters/{{shelter_id}}",
            "shelter_id",
            "$response.body#/id",
        ),
        (
            "ListUnits",
            "get",
            f"{_P}/shelters/{{shelter_id}}/units",
            "shelter_id",
            "$response.body#/id",
        ),
        (
            "AddUnit",
            "post",
            f"{_P}/shelters/{{shelter_id}}/units",
            "shelter_id",
            "$response.body#/id",
        ),
    ],
    ("post", f"{_P}/shelters/{{shelter_id}}/units", "201"): [
        ("GetUnit", "get", f"{_P}/units/{{unit_id}}", "unit_id", "$response.body#/id"),
        ("PatchUnit", "patch", f"{_P}/units/{{unit_id}}", "unit_id", "$response.body#/id"),
        ("UnitHistory", "get", f"{_P}/units/{{unit_id}}/history", "unit_id", "$response.body#/id"),
    ],
    ("post", f"{_P}/grants", "201"): [
        ("GetGrant", "get", f"{_P}/grants/{{grant_id}}", "grant_id", "$response.body#/id"),
    ],
    ("post", f"{_P}/matching-runs", "202"): [
        (
            f"Get{name}",
            "get",
            f"{_P}/matching-runs/{{run_id}}{suffix}",
            "run_id",
            "$response.body#/id",
        )
        for name, suffix in (("Run", ""), ("RunProblem", "/problem"), ("RunSolution", "/solution"))
    ],
    ("post", f"{_P}/users", "201"): [
        (
            "CreateApiKey",
            "post",
            f"{_P}/users/{{user_id}}/api-keys",
            "user_id",
            "$response.body#/id",
        ),
    ],
}


def add_links(doc: dict[str, Any]) -> None:
    """Add the links of ``LINKS`` to the responses of ``doc``, by operationId.

    A link whose source or target operation is missing from ``doc`` raises ``KeyError``: a
    renamed route must not silently drop its links.
    """
    paths = doc["paths"]
    for (method, path, status), links in LINKS.items():
        response = paths[path][method]["responses"][status]
        out = response.setdefault("links", {})
        for name, target_method, target_path, parameter, expression in links:
            link: dict[str, Any] = {"operationId": paths[target_path][target_method]["operationId"]}
            if parameter.startswith("body:"):
                link["requestBody"] = {parameter.removeprefix("body:"): expression}
            else:
                link["parameters"] = {parameter: expression}
            out[name] = link
