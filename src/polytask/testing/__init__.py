"""Checks for balancers, public so that a user adding a method can run them
(``polytask.testing``).

- :func:`check_balancer`: every check a method must pass, driven by what the method's class
  declares (``properties``, ``task_state``, ``levels``);
- :data:`PROPERTIES`: the declarable properties and their assertions;
- :func:`jacobian_cases`: the generated Jacobians the checks run on.

Example::

    from polytask.testing import check_balancer
    check_balancer("mgda")               # a registered method
    check_balancer(MyMethod, alpha=0.5)  # your own Balancer subclass
"""

from polytask.testing.check import CHECKS, check_balancer, factory
from polytask.testing.inputs import KINDS, SCALES, JacobianCase, jacobian_cases, make_jacobian
from polytask.testing.properties import PROPERTIES, Property, direction

__all__ = [
    "CHECKS",
    "KINDS",
    "PROPERTIES",
    "SCALES",
    "JacobianCase",
    "Property",
    "check_balancer",
    "direction",
    "factory",
    "jacobian_cases",
    "make_jacobian",
]
