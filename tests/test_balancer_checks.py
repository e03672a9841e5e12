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
