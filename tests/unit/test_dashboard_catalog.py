"""The committed Chinese catalog: every entry translated, and the .mo matches the .po."""

import gettext
import re
from pathlib import Path

CATALOG = Path(__file__).resolve().parents[2] / "kiosk/dashboard/locale/zh_Hans/LC_MESSAGES"


def _po_entries(text: str) -> dict[str, str]:
    entries = {}
    for block in text.split("\n\n"):
        if block.lstrip().startswith("#~"):
            continue
        match = re.search(
            r'^msgid ((?:".*"\n)+)(?:msgid_plural (?:".*"\n)+)?msgstr(?:\[0\])? ((?:".*"\n?)+)',
            block + "\n",
            re.M,
        )
        if not match:
            continue

        def unquote(lines: str) -> str:
            return "".join(
                bytes(s, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
                for s in re.findall(r'"(.*)"', lines)
            )

        msgid = unquote(match.group(1))
        if msgid:
            entries[msgid] = unquote(match.group(2))
    return entries


def test_every_message_is_translated_and_compiled():
    text = (CATALOG / "django.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in text, "fuzzy entries are not compiled: review them"
    entries = _po_entries(text)
    assert len(entries) > 50
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr]
    assert untranslated == []
    with (CATALOG / "django.mo").open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    plurals = set(re.findall(r'^msgid "(.*)"\nmsgid_plural', text, re.M))
    stale = [
        msgid
        for msgid, msgstr in entries.items()
        if (compiled.ngettext(msgid, msgid, 1) if msgid in plurals else compiled.gettext(msgid))
        != msgstr
    ]
    assert stale == [], "run compilemessages: the .mo does not match the .po"
