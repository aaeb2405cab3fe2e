"""Experiments: the sweep runner, the three experiment families and ``refopt report``.

* :mod:`.runner`: rules x objectives x hyperparameters x seeds, resumable JSON Lines results,
  local processes or a Dask cluster;
* :mod:`.adamx_transition`: AdamX's late-training transition to momentum SGD (spec T5, T8);
* :mod:`.adams_rate`: AdamS's rate under (L0, L1)-smoothness, divergence contrast, paper vs code
  form (spec N1, N3, 2.3);
* :mod:`.alphaadam_masks`: AlphaAdam's mask density, noise floor and first-step policy (spec 4.5);
* :mod:`.report`: the Markdown report of every claim with its verdict (``refopt report``).
"""
from ._common import NOT_REPRODUCED, REPRODUCED, VERDICTS
from .runner import expand_sweep, read_results, run_key, run_one, run_sweep

__all__ = ["NOT_REPRODUCED", "REPRODUCED", "VERDICTS", "expand_sweep", "read_results", "run_key",
           "run_one", "run_sweep"]
