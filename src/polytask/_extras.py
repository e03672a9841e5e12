"""Optional dependencies: a missing one fails with one line naming the extra to install."""

from __future__ import annotations


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra
    (``pip install 'polytask[EXTRA]'``) and, where there is one, the setting that avoids it."""


def missing_extra(what: str, extra: str, instead: str = "") -> MissingExtraError:
    """The error for ``what`` needing the extra ``extra`` (``instead``: how to do without)."""
    tail = f" (or {instead})" if instead else ""
    return MissingExtraError(f"{what} needs pip install 'polytask[{extra}]'{tail}")
