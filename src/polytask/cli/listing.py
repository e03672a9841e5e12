"""``polytask list``'s text form: one block per entry, wrapped to the terminal.

A registry entry's summary is its docstring's first sentence, which is often long and holds
reStructuredText markup; a one-line table of them ran to 600 characters. Each entry is
printed instead as its name and facts on one line, then its summary and options wrapped and
indented below it, every line within the terminal's width (100 columns when not a terminal).
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Sequence


def plain_text(text: str) -> str:
    """``text`` without reStructuredText markup: double backticks and roles
    (``:class:`~polytask.X` `` -> ``X``) become plain words."""
    text = re.sub(r":[a-z]+:`~?([^`]*)`", lambda m: m.group(1).split(".")[-1], text)
    return text.replace("``", "").replace("`", "")


ABBREVIATIONS = ("e.g", "i.e", "et al", "vs", "cf", "resp", "approx")


def first_sentence(text: str) -> str:
    """The text up to its first sentence end: a period followed by a space, not one that
    closes an abbreviation (``e.g.``, ``i.e.``, ``et al.`` ...)."""
    for match in re.finditer(r"\.\s", text):
        before = text[: match.start()].lower()
        if not before.endswith(ABBREVIATIONS):
            return text[: match.start() + 1]
    return text


def blocks(entries: Sequence[tuple[str, str, str, str]], width: int | None = None) -> str:
    """Entries ``(name, facts, summary, options)`` as wrapped blocks within ``width``
    columns (default: the terminal's)."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    width = max(40, min(width, 120))
    lines = []
    for name, facts, summary, options in entries:
        lines.append(f"{name}  {facts}".rstrip() if facts else name)
        wrap = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="    ")
        if summary:
            lines.extend(wrap.wrap(first_sentence(plain_text(summary))))
        if options:
            options_wrap = textwrap.TextWrapper(
                width=width, initial_indent="    options: ", subsequent_indent="      "
            )
            lines.extend(options_wrap.wrap(options))
    return "\n".join(lines)
