"""MGDA-UB: MGDA on the shared representation (the upper bound)."""

from __future__ import annotations

from typing import ClassVar

from polytask.balancers.base import Level
from polytask.balancers.mgda import MGDA, Normalization
from polytask.balancers.registry import register


@register("mgda_ub")
class MGDAUB(MGDA):
    """MGDA-UB (Sener & Koltun, NeurIPS 2018, section 3.3): MGDA applied to the gradients
    with respect to the shared representation instead of the shared parameters, which
    minimises an upper bound of the MGDA objective at the cost of one backward through the
    trunk. Defined at the representation level only (use ``mgda`` at the parameter level).

    Args:
        normalization: gradient normalisation (``loss+`` by default, as in the paper's
            MultiMNIST experiments; see :class:`MGDA`).
        max_iter, tol: see :class:`MGDA`.
    """

    # loss+ normalisation (the default) makes the update neither linear nor the common
    # gradient of identical tasks; it stays the min-norm point of the normalised gradients.
    properties: ClassVar[frozenset[str]] = frozenset({"non_conflicting", "order_invariant"})

    levels: ClassVar[tuple[Level, ...]] = ("representation",)

    def __init__(
        self, normalization: Normalization = "loss+", max_iter: int = 250, tol: float = 1e-12
    ) -> None:
        super().__init__(normalization, max_iter, tol)
