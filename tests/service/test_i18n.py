"""Refuge in kk, ru and en: complete catalogues, the choice of language, unchanged codes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service import i18n
from shelters import identity
from shelters.errors import CapacityExceeded, NotFound
from shelters.identity import Role
from tests.conftest import PASSWORD, World, csrf_of

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "service" / "locale"
FIELD = re.compile(r"\{(\w+)(?:![rs])?\}|%\((\w+)\)s")


def _fields(text: str) -> set[str]:
    return {a or b for a, b in FIELD.findall(text)}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict[object, object]:
    """The msgids the code and the templates use now, extracted as `make messages-extract` does."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    args = ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "--no-location"]
    CommandLineInterface().run([*args, "-o", str(pot), str(ROOT)])
    with pot.open("rb") as handle:
        return {m.id: m for m in read_po(handle) if m.id}


def _catalogue(locale: str) -> dict[object, object]:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return {m.id: m for m in read_po(handle, locale=locale) if m.id}


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_message_of_the_code_is_in_each_catalogue(
    extracted: dict[object, object], locale: str
) -> None:
    missing = sorted(map(str, set(extracted) - set(_catalogue(locale))))
    assert missing == [], f"run `make messages-update` and translate: {missing}"


@pytest.mark.parametrize("locale", ["kk", "ru"])
def test_kazakh_and_russian_translate_every_message_and_none_is_fuzzy(locale: str) -> None:
    untranslated, fuzzy, wrong_fields = [], [], []
    for msgid, message in _catalogue(locale).items():
        forms = message.string if isinstance(message.string, tuple) else (message.string,)  # type: ignore[attr-defined]
        if not all(forms):
            untranslated.append(msgid)
        if message.fuzzy:  # type: ignore[attr-defined]
            fuzzy.append(msgid)
        source = msgid[0] if isinstance(msgid, tuple) else msgid
        if any(_fields(str(form)) != _fields(str(source)) for form in forms if form):
            wrong_fields.append(msgid)
    assert (untranslated, fuzzy, wrong_fields) == ([], [], [])


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_the_committed_mo_is_compiled_from_the_po(locale: str) -> None:
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue, use_fuzzy=False)  # what `pybabel compile` writes
    assert (folder / "messages.mo").read_bytes() == compiled.getvalue(), "make messages-compile"


def test_russian_has_three_plural_forms_and_kazakh_two() -> None:
    singular = "Too many failed logins. Try again in about {n} minute."
    plural = "Too many failed logins. Try again in about {n} minutes."
    ru = {n: i18n.ngettext("ru", singular, plural, n) for n in (1, 2, 5, 21)}
    assert ru[1].endswith("через 1 минуту.")
    assert ru[2].endswith("через 2 минуты.")
    assert ru[5].endswith("через 5 минут.")
    assert ru[21].endswith("через 21 минуту.")
    assert i18n.translations("kk").plural(1) == 0  # type: ignore[attr-defined]
    assert i18n.translations("kk").plural(5) == 1  # type: ignore[attr-defined]
    assert i18n.ngettext("en", singular, plural, 1).endswith("1 minute.")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("de-DE, kk;q=0.5, ru;q=0.4", "kk"),
        ("en;q=0.1, ru", "ru"),
        ("fr, de", None),
        ("ru;q=0, en", "en"),
        ("", None),
        (None, None),
    ],
)
def test_accept_language_is_negotiated_by_quality(header: str | None, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


def test_the_users_locale_beats_accept_language_which_beats_the_default() -> None:
    assert i18n.choose("kk", "ru", "en") == "kk"
    assert i18n.choose(None, "ru-KZ", "en") == "ru"
    assert i18n.choose(None, "fr", "ru") == "ru"
    assert i18n.choose(None, None, "en") == "en"


def test_a_domain_error_keeps_its_english_detail_and_is_said_in_russian() -> None:
    error = NotFound("placement {placement_id} not found", placement_id=7)
    assert error.detail == "placement 7 not found"
    assert i18n.error_detail(error, "ru") == "размещение 7 не найдено"
    assert i18n.error_detail(error, "en") == "placement 7 not found"
    short = CapacityExceeded(
        "unit {unit_id} has {free} free beds, {count} needed", unit_id=3, free=1, count=2
    )
    assert i18n.error_detail(short, "kk") == "3 бөлімінде бос төсек-орын: 1, қажеті: 2"


def test_local_times_are_in_the_deployments_zone() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 12, 3, 20, 30, tzinfo=UTC)  # 01:30 next day in Almaty (UTC+5)
    assert "4 дек. 2026" in i18n.format_datetime(moment, "ru", "Asia/Almaty")
    assert "01:30" in i18n.format_datetime(moment, "ru", "Asia/Almaty")
    assert i18n.format_number(12345, "ru") == "12\xa0345"


def test_an_api_problem_in_russian_keeps_type_status_and_codes(
    client: TestClient, world: World
) -> None:
    headers = world.headers(Role.COORDINATOR) | {"Accept-Language": "ru-RU,ru;q=0.9"}
    response = client.get("/api/v1/placements/999999", headers=headers)
    assert response.status_code == 404
    assert response.headers["content-language"] == "ru"
    assert "Accept-Language" in response.headers["vary"]
    body = response.json()
    assert body["type"] == "urn:refuge:problem:not-found"
    assert body["status"] == 404
    assert body["title"] == "Не найдено"
    assert body["detail"] == "размещение 999999 не найдено"


def test_without_accept_language_problems_stay_english(client: TestClient, world: World) -> None:
    response = client.get("/api/v1/placements/999999", headers=world.headers(Role.COORDINATOR))
    assert response.headers["content-language"] == "en"
    assert response.json()["detail"] == "placement 999999 not found"


def test_forbidden_in_kazakh_names_the_role_in_words(client: TestClient, world: World) -> None:
    headers = world.headers(Role.COORDINATOR) | {"Accept-Language": "kk"}
    response = client.post(
        "/api/v1/organizations", headers=headers, json={"name": "x", "kind": "ngo"}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:refuge:problem:forbidden"
    assert response.json()["detail"] == "«үйлестіруші» рөліне бұған рұқсат жоқ"


def test_a_user_chooses_a_locale_that_beats_accept_language(
    client: TestClient, world: World
) -> None:
    headers = world.headers(Role.CASEWORKER)
    chosen = client.patch("/api/v1/me", headers=headers, json={"locale": "kk"})
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["locale"] == "kk"
    services = client.get("/api/v1/services", headers=headers | {"Accept-Language": "ru"})
    assert services.headers["content-language"] == "kk"
    labels = {s["code"]: s["label"] for s in services.json()}
    assert labels["legal_aid"] == "Заң көмегі"
    cleared = client.patch("/api/v1/me", headers=headers, json={"locale": None})
    assert cleared.json()["locale"] is None
    services = client.get("/api/v1/services", headers=headers | {"Accept-Language": "ru"})
    assert {s["code"]: s["label"] for s in services.json()}["legal_aid"] == "Юридическая помощь"


def test_an_unknown_locale_is_refused_by_the_schema(client: TestClient, world: World) -> None:
    response = client.patch("/api/v1/me", headers=world.headers(Role.FUNDER), json={"locale": "de"})
    assert response.status_code == 422


def test_an_admin_sets_a_users_locale_and_others_may_not(
    client: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.COORDINATOR)
    denied = client.patch(
        f"/api/v1/users/{user.id}", headers=world.headers(Role.CASEWORKER), json={"locale": "ru"}
    )
    assert denied.status_code == 403
    done = client.patch(
        f"/api/v1/users/{user.id}", headers=world.headers(Role.ADMIN), json={"locale": "ru"}
    )
    assert done.status_code == 200, done.text
    db.expire_all()
    assert identity.get_user(db, user.id).locale == "ru"
    assert client.get("/api/v1/me", headers=world.headers_for(user)).json()["locale"] == "ru"


def test_a_page_for_a_kazakh_user_is_in_kazakh_only(client: TestClient, world: World) -> None:
    shelter = world.shelter(names={"kk": "Сынақ баспанасы", "ru": "Тестовый приют"})
    world.unit(shelter)
    user = world.user(Role.COORDINATOR, shelters=[shelter])
    user.locale = "kk"
    world.db.flush()
    client.base_url = "https://testserver"  # type: ignore[assignment]
    token = csrf_of(client)
    login = client.post(
        "/ui/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert login.status_code == 303, login.text
    page = client.get("/ui/coordinator")
    assert page.status_code == 200
    assert page.headers["content-language"] == "kk"
    assert '<html lang="kk">' in page.text
    assert "Менің баспаналарым" in page.text
    assert "Сынақ баспанасы" in page.text  # the shelter's own Kazakh name, not its fallback
    assert shelter.name not in page.text
    english = [
        msgid
        for msgid in _catalogue("kk")
        if isinstance(msgid, str) and len(msgid) > 3 and msgid[0].isupper() and " " in msgid
    ]
    shown = re.sub(r"<[^>]+>", "\n", page.text)
    leaked = [text for text in english if text in shown]
    assert leaked == []


def test_the_login_page_follows_accept_language(client: TestClient) -> None:
    page = client.get("/ui/login", headers={"Accept-Language": "ru"})
    assert '<html lang="ru">' in page.text
    assert "Имя пользователя" in page.text
    assert page.headers["content-language"] == "ru"


def test_the_settings_page_saves_a_language_and_refuses_an_unknown_one(
    client: TestClient, world: World
) -> None:
    user = world.user(Role.CASEWORKER)
    client.base_url = "https://testserver"  # type: ignore[assignment]
    token = csrf_of(client)
    client.post(
        "/ui/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    token = csrf_of(client, "/ui/settings")
    saved = client.post("/ui/settings", data={"locale": "ru", "csrf_token": token})
    assert saved.status_code == 200
    assert '<html lang="ru">' in saved.text
    assert "Настройки сохранены." in saved.text
    refused = client.post("/ui/settings", data={"locale": "xx", "csrf_token": token})
    assert refused.status_code == 422
    assert "locale должен быть одним из kk, ru, en или null" in refused.text
    cleared = client.post(
        "/ui/settings", data={"locale": "", "csrf_token": token}, headers={"Accept-Language": "kk"}
    )
    assert '<html lang="kk">' in cleared.text


@pytest.mark.parametrize(
    ("short", "russian", "kazakh"), [(1, "1 места", "1 төсек-орын"), (2, "2 мест", "2 төсек-орын")]
)
def test_an_overbooking_refusal_counts_the_missing_beds_in_each_language(
    client: TestClient, world: World, short: int, russian: str, kazakh: str
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=5, held=2, occupied=1)
    headers = world.headers(Role.COORDINATOR, shelters=[shelter])
    url = f"/api/v1/units/{unit.id}"
    etag = client.get(url, headers=headers).headers["etag"]
    body = {"capacity": 3 - short}
    answers = {
        lang: client.patch(
            url, json=body, headers=headers | {"If-Match": etag, "Accept-Language": lang}
        )
        for lang in ("en", "ru", "kk")
    }
    assert {a.status_code for a in answers.values()} == {409}
    assert len({a.json()["type"] for a in answers.values()}) == 1
    assert f"{short} bed{'s' if short > 1 else ''} short" in answers["en"].json()["detail"]
    assert f"не хватило бы {russian}" in answers["ru"].json()["detail"]
    assert kazakh in answers["kk"].json()["detail"]
    assert answers["ru"].headers["content-language"] == "ru"


def test_validation_messages_are_said_in_the_callers_language_with_pydantics_types(
    client: TestClient, world: World
) -> None:
    body = {"code": "x-region", "lat": 91, "lon": 0, "extra": 1}
    headers = world.headers(Role.ADMIN)
    answers = {
        lang: client.post("/api/v1/regions", json=body, headers=headers | {"Accept-Language": lang})
        for lang in ("en", "ru", "kk")
    }
    assert {a.status_code for a in answers.values()} == {422}
    by_lang = {lang: {e["loc"]: e for e in a.json()["errors"]} for lang, a in answers.items()}
    assert {loc: e["type"] for loc, e in by_lang["ru"].items()} == {
        loc: e["type"] for loc, e in by_lang["en"].items()
    }
    assert by_lang["en"]["body.name"]["msg"] == "Field required"  # pydantic's own words
    assert by_lang["ru"]["body.name"]["msg"] == "Обязательное поле"
    assert by_lang["kk"]["body.name"]["msg"] == "Міндетті өріс"
    assert by_lang["ru"]["body.lat"]["msg"] == "Значение должно быть не больше 90"
    assert "body.lat: Значение должно быть не больше 90" in answers["ru"].json()["detail"]
    assert "Лишние поля" in by_lang["ru"]["body.extra"]["msg"]


def test_a_literal_choice_is_listed_without_an_english_or(client: TestClient, world: World) -> None:
    headers = world.headers(Role.FUNDER) | {"Accept-Language": "ru"}
    response = client.patch("/api/v1/me", headers=headers, json={"locale": "de"})
    (error,) = response.json()["errors"]
    assert error["msg"].startswith("Допустимые значения: ")
    assert " or " not in error["msg"]
