"""Names per language: what may be stored, and which name a reader sees."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shelters import demo
from shelters.errors import InvalidInput
from shelters.names import check_names, localized_name


def test_names_are_kept_in_language_order_and_stripped() -> None:
    assert check_names({"ru": " Абайская область ", "kk": "Абай облысы"}) == {
        "kk": "Абай облысы",
        "ru": "Абайская область",
    }
    assert list(check_names({"en": "A", "ru": "Бб", "kk": "Әә"})) == ["kk", "ru", "en"]
    assert check_names({}) == {}


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"de": "Abai"}, "unknown language de"),
        ({"kk": ""}, "names.kk must not be empty"),
        ({"ru": "   "}, "names.ru must not be empty"),
        ({"en": "x" * 201}, "longer than 200"),
        ({"kk": "Абай\x00"}, "control characters"),
        ({"kk": 7}, "must be a string"),
    ],
)
def test_bad_names_are_refused(names: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_names(names)


def test_a_name_of_200_characters_is_kept() -> None:
    assert check_names({"kk": "қ" * 200}) == {"kk": "қ" * 200}


def test_the_reader_sees_their_language_else_the_fallback() -> None:
    region = SimpleNamespace(
        name="Abai Region", names={"kk": "Абай облысы", "ru": "Абайская область"}
    )
    assert localized_name(region, None, "kk") == "Абай облысы"
    assert localized_name(region, None, "ru-RU") == "Абайская область"
    assert localized_name(region, None, "kk_KZ") == "Абай облысы"
    assert localized_name(region, None, "en") == "Abai Region"
    assert localized_name(region, None, None) == "Abai Region"
    assert localized_name(region.names, "fallback", "KK") == "Абай облысы"
    assert localized_name({}, "fallback", "kk") == "fallback"
    assert localized_name(region, "given", "de") == "given"


def test_every_demo_region_has_its_kazakh_and_russian_name() -> None:
    assert set(demo.REGION_NAMES) == {code for code, *_ in demo.REGIONS}
    for code, names in demo.REGION_NAMES.items():
        assert check_names(names) == names, code
        assert set(names) == {"kk", "ru"}
    cities = {"astana", "almaty", "shymkent"}
    for code, names in demo.REGION_NAMES.items():
        if code in cities:
            assert names["kk"].endswith(" қаласы")
            assert names["ru"].startswith("город ")
        else:
            assert names["kk"].endswith(" облысы")
            assert names["ru"].endswith(" область")
    # The three regions the 2022 reform created.
    assert demo.REGION_NAMES["abai"] == {"kk": "Абай облысы", "ru": "Абайская область"}
    assert demo.REGION_NAMES["jetisu"] == {"kk": "Жетісу облысы", "ru": "Жетысуская область"}
    assert demo.REGION_NAMES["ulytau"] == {"kk": "Ұлытау облысы", "ru": "Улытауская область"}
