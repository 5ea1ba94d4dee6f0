"""The package's layout by role: every model under ``models``, light imports stay light."""

from __future__ import annotations

import subprocess
import sys

from madutils import models
from madutils.models.base import GenerativeModel


def test_every_model_is_in_models_behind_one_protocol():
    names = {"GaussianModel", "GaussianMixtureModel", "CouplingFlow", "ConditionalDDPM", "WGANGP"}
    assert names <= set(models.__all__)
    for name in names:
        model_class = getattr(models, name)
        assert issubclass(model_class, GenerativeModel), name
        for method in ("fit", "sample", "get_params", "clone"):
            assert callable(getattr(model_class, method)), (name, method)


def test_settings_and_batched_loops_do_not_import_the_image_models():
    code = (
        "import sys\n"
        "from madutils.loops import LoopConfig, run_loop\n"
        "from madutils.analysis import run_sweep\n"
        "from madutils.models import CouplingFlow\n"
        "print('diffusers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
