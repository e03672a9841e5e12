"""``make bench``: run the quick version of every benchmark (each script has ``--full``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = [
    "step_cost.py",
    "architectures.py",
    "synthetic_correlation.py",
    "tabular_throughput.py",
    "census_protocol.py",
    "multi_mnist_balancers.py",
    "primary_auxiliary.py",
    "small_towers.py",
    "parkinsons_patients.py",
    "small_tables.py",
    "classic.py",
    "classic_speed.py",
    "federated.py",
    "federated_parkinsons.py",
    "federated_round_cost.py",
    "data_parallel.py",
    "snips_joint.py",  # --full: about 2.5 hours on 2 cores (35 BiLSTM runs of 20 epochs)
]

if __name__ == "__main__":
    here = Path(__file__).parent
    for script in BENCHMARKS:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(here / script), *sys.argv[1:]], check=True)
