"""Every registered balancer passes every shared check, driven by what its own file declares
(``polytask.testing.check_balancer``): adding a method to the registry adds it here."""

from __future__ import annotations

import pytest

import polytask
from polytask.testing import CHECKS, PROPERTIES
from polytask.testing.check import factory


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("name", polytask.balancers.available())
def test_registered_balancer_passes(name: str, check: str) -> None:
    failures = CHECKS[check](factory(name))
    assert not failures, "\n".join(failures[:20])


def test_every_declared_property_is_known() -> None:
    for name in polytask.balancers.available():
        cls = polytask.balancers.BALANCERS.get(name).factory
        assert set(cls.properties) <= set(PROPERTIES), name


def test_docs_property_table_is_the_declarations() -> None:
    from pathlib import Path

    from polytask.testing.docs import property_table

    docs = (Path(__file__).parents[1] / "docs" / "balancers.md").read_text()
    assert property_table() in docs, "run: python -m polytask.testing.docs > the table in docs"


def test_a_user_method_is_checked_from_its_declarations() -> None:

    from polytask.balancers import GramianWeighting
    from polytask.testing import check_balancer

    class Mean(GramianWeighting):
        properties = frozenset({"order_invariant", "homogeneous", "mean_without_conflict"})

        def gramian_weights(self, gramian, losses):
            return gramian.new_full((gramian.shape[0],), 1.0 / gramian.shape[0])

    check_balancer(Mean)

    class Claims(Mean):  # the mean conflicts: a false claim is caught
        properties = frozenset({"non_conflicting"})

    with pytest.raises(AssertionError, match="non_conflicting"):
        check_balancer(Claims)
