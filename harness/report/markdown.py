"""The one Markdown escaper: every user string in summary.md (and any other Markdown output) goes through it.

CommonMark lets any ASCII punctuation character be backslash-escaped, and an escaped one is always
literal text: no heading, emphasis, code span, link, image, autolink, raw HTML, entity or table pipe
can start from it. Control and invisible characters (C0, DEL, C1, U+2028/U+2029, bidi and other
format characters) would break a table row or a line, or hide what a name says: they are shown as
their escape (`\\r`, `\\x1b`, `\\u2028`). Escaped text is never put inside a code span, where
backslashes are literal.
"""

from __future__ import annotations

import string
import unicodedata

_PUNCTUATION = frozenset(string.punctuation)  # CommonMark's "ASCII punctuation character", all 32
_NAMED = {"\n": "n", "\r": "r", "\t": "t"}
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp")  # control, format (bidi, zero-width), line and paragraph separators


def escape_markdown(text: str) -> str:
    """`text` as Markdown that renders exactly as `text` reads, on one line, safe in a table cell."""
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char in _PUNCTUATION:
        return "\\" + char
    if char.isascii() and char.isprintable() or unicodedata.category(char) not in _INVISIBLE:
        return char
    code = ord(char)
    name = _NAMED.get(char) or (f"x{code:02x}" if code < 0x100 else f"u{code:04x}" if code < 0x10000 else f"U{code:08x}")
    return "\\\\" + name  # a literal backslash, then the name
