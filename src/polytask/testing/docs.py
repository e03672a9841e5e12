"""The property table of ``docs/balancers.md``, made from the methods' own declarations.

``python -m polytask.testing.docs`` prints it; a test keeps the copy in the docs equal to it,
so the docs cannot claim a property a method does not declare (and every declared property
is checked by :func:`polytask.testing.check_balancer`).
"""

from __future__ import annotations

from polytask.balancers import BALANCERS
from polytask.testing.properties import PROPERTIES

BEGIN = "<!-- properties: made by `python -m polytask.testing.docs`; do not edit -->"
END = "<!-- end of properties -->"


def property_table() -> str:
    """A markdown table: one row per registered balancer, one column per property, ``yes``
    where the method declares it (blank where the property does not apply to its family)."""
    names = list(PROPERTIES)
    lines = [
        "| method | needs | per-task state | " + " | ".join(f"`{n}`" for n in names) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for entry in BALANCERS:
        cls = entry.factory
        needs = getattr(cls, "needs", "losses")
        declared: frozenset[str] = getattr(cls, "properties", frozenset())
        cells = [
            ("yes" if n in declared else "no") if needs in PROPERTIES[n].families else ""
            for n in names
        ]
        state = ", ".join(f"`{k}`" for k in getattr(cls, "task_state", {})) or "-"
        lines.append(f"| `{entry.name}` | {needs} | {state} | " + " | ".join(cells) + " |")
    meanings = [f"- `{n}`: {p.meaning}" for n, p in PROPERTIES.items()]
    return "\n".join([BEGIN, "", *lines, "", *meanings, "", END])


if __name__ == "__main__":
    print(property_table())
