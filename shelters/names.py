"""Names of regions and shelters in several languages.

A region or shelter keeps its ``name`` (the fallback, shown when no name in the reader's
language is known) and a ``names`` map from a language code to the name in that language:
``{"kk": "Абай облысы", "ru": "Абайская область"}``. Only Refuge's languages are keys; a
language without a name is simply absent (never an empty string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shelters.errors import InvalidInput

LOCALES = ("kk", "ru", "en")
"""The languages a name may be given in, in the order they are stored."""
MAX_NAME_LENGTH = 200
"""The longest name, in characters: the same limit as ``name``."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_names(names: Mapping[str, Any]) -> dict[str, str]:
    """The names to store: keys in :data:`LOCALES` order, values stripped of outer whitespace.

    Raises ``InvalidInput`` for a language outside :data:`LOCALES`, a value that is not a
    string, an empty (or all-whitespace) name, one longer than :data:`MAX_NAME_LENGTH`
    characters, or one holding control characters. An empty map is valid: no names yet.
    """
    unknown = sorted(str(key) for key in names if key not in LOCALES)
    if unknown:
        raise InvalidInput(
            "names: unknown language {unknown}; use {known}",
            unknown=", ".join(unknown),
            known=", ".join(LOCALES),
        )
    checked: dict[str, str] = {}
    for locale in LOCALES:
        if locale not in names:
            continue
        value = names[locale]
        if not isinstance(value, str):
            raise InvalidInput("names.{locale} must be a string", locale=locale)
        value = value.strip()
        if not value:
            raise InvalidInput("names.{locale} must not be empty", locale=locale)
        if len(value) > MAX_NAME_LENGTH:
            raise InvalidInput(
                "names.{locale} is longer than {limit} characters",
                locale=locale,
                limit=MAX_NAME_LENGTH,
            )
        if _CONTROL.search(value):
            raise InvalidInput("names.{locale} holds control characters", locale=locale)
        checked[locale] = value
    return checked


def localized_name(obj_or_names: Any, name: str | None, locale: str | None) -> str:
    """The name to show a reader of ``locale``, else the fallback ``name``.

    ``obj_or_names`` is a names map or an object with a ``names`` attribute (a ``Region``, a
    ``Shelter``); when ``name`` is None the object's own ``name`` is the fallback. ``locale``
    may carry a territory or script (``kk-KZ``, ``ru_RU``, ``kk-Cyrl``): only its language
    counts. Without a name in that language, or without a locale, the fallback is returned
    (an empty string if there is none at all).
    """
    names = obj_or_names if isinstance(obj_or_names, Mapping) else obj_or_names.names
    if name is None:
        name = getattr(obj_or_names, "name", None)
    if locale:
        language = re.split(r"[-_]", locale, maxsplit=1)[0].lower()
        found = (names or {}).get(language)
        if isinstance(found, str) and found:
            return found
    return name or ""
