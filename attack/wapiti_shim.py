"""Debian's wapiti 3.0.4 on Python 3.11: every excluded address (-x) crashes it, because its
wildcard_translate puts the (?ms) flags at the end of the pattern, which Python 3.11 refuses
("global flags not at the start"). This runs wapiti (with the system Python, where Debian
installs it) with that one function put right; nothing else of wapiti changes."""

import re
import sys

from wapitiCore.net import crawler


def wildcard_translate(pattern: str) -> re.Pattern[str]:
    return re.compile("(?ms)" + "".join(".*" if char == "*" else re.escape(char) for char in pattern) + r"\Z")


crawler.wildcard_translate = wildcard_translate

from wapitiCore.main.wapiti import wapiti_main  # noqa: E402 - after the fix above

sys.exit(wapiti_main())
