"""Studies built from training runs (``polytask.studies``): the seesaw diagnosis, single-task
baselines, repeated seeds and comparisons. They train through :mod:`polytask.training` and
measure with :mod:`polytask.evaluation`."""

from polytask.studies.diagnose import diagnose_config, diagnose_training

__all__ = ["diagnose_config", "diagnose_training"]
