"""A predictor, a model and a dataset added as one new file each, in a temporary copy of the repository, appear
everywhere: the CLI's help, ``ExperimentConfig.validate``, the pipeline's rows, the Experiments form, and the Compare
and Scaling pages with their own label and colour. Nothing else in the copy is edited; the packages find the files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

PLUGINS = {
    "know_core/predictors/halfstep.py": '''
        """A plugin predictor: half of TaskVector's step."""
        from know_core.predictors import Option, register_predictor
        from know_core.predictors.base import Predictor


        class HalfStep(Predictor):
            name = "halfstep"
            min_stages = 2

            def __init__(self, frac: float = 0.5) -> None:
                self.frac = frac

            def step(self, window, group):
                return window[:, -1] + self.frac * (window[:, -1] - window[:, -2])


        register_predictor("halfstep", HalfStep, label="Half a step", colour="#123456",
                           options=[Option("frac", "float", 0.5, "share of the last step", low=0.0, high=1.0)])
    ''',
    "know_core/models/tiny_linear.py": '''
        """A plugin model: one linear layer."""
        from torch import nn

        from know_core.models import register_model


        @register_model("tiny_linear", "one linear layer on flattened inputs (a plugin)")
        def tiny_linear(input_shape, num_classes):
            c, h, w = input_shape
            return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))
    ''',
    "know_core/data/stripes.py": '''
        """A plugin dataset: noisy class prototypes, seeded."""
        import numpy as np

        from know_core.data import normalised, register_dataset, stratified_split


        @register_dataset("stripes", "seeded 1x8x8 prototypes plus noise (a plugin)")
        def _stripes(_root):
            rng = np.random.default_rng(11)
            prototypes = rng.normal(size=(4, 1, 8, 8)).astype(np.float32)
            y = np.repeat(np.arange(4), 200)
            x = prototypes[y] + 2.0 * rng.normal(size=(len(y), 1, 8, 8)).astype(np.float32)
            tr, te = stratified_split(y, 0.25)
            return normalised("stripes", x[tr], y[tr], x[te], y[te], default_batch_size=16)
    ''',
}

# Runs inside the copy: validate, a tiny experiment, then the form and the two pages that plot methods.
CHECKS = '''
import dataclasses, json, os, sys
from pathlib import Path

import know_core
from streamlit.testing.v1 import AppTest

from experiment_helpers import tiny_experiment
from know_core.common.errors import ConfigError
from know_core.experiment.methods import label as method_label
from know_core.experiment.spec import ExperimentConfig
from know_core.jobs.lifecycle import record_experiment
from know_core.store.runstore import RunStore

copy, out = Path(sys.argv[1]), {}
out["package"] = know_core.__file__
ExperimentConfig(methods=["naive", "halfstep"]).validate()
cfg = tiny_experiment(methods=["naive", "taskvector", "halfstep"])
cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, dataset="stripes:0-1", model="tiny_linear"),
                          target_dataset="stripes:2-3")
short = dataclasses.replace(cfg, methods=["known"], source=dataclasses.replace(cfg.source, stages=4))
try:
    short.validate()
except ConfigError as exc:
    out["short"] = str(exc)
root = copy / "runs"
run_id = record_experiment(cfg, RunStore(root), name="plugins")
rows = RunStore(root).open(run_id).results()["rows"]
out["rows"] = sorted({r["method"] for r in rows if r.get("valid", True)})
os.environ["KNOW_RUNS_DIR"] = str(root)


def page(name):
    at = AppTest.from_file(str(copy / "app.py"), default_timeout=120)
    at.switch_page(f"screens/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


at = page("experiments")
out["form_methods"] = list(next(m for m in at.multiselect if m.label == "Methods").options)
out["form_models"] = list(next(s for s in at.selectbox if s.label == "Model").options)
keys = {method_label(k): k for k in ("halfstep", "shrink:halfstep")}  # the pages name methods by their labels
for name in ("compare", "scaling"):
    traces = [t for c in page(name).get("plotly_chart") for t in json.loads(c.proto.spec)["data"]]
    out[name] = {keys[t["name"]]: (t.get("marker") or {}).get("color") or (t.get("line") or {}).get("color")
                 for t in traces if t.get("name") in keys}
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """A copy of the app and its engine with the three plugin files added, and the environment that runs it."""
    root = tmp_path_factory.mktemp("repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("know_core", "screens", ".streamlit"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    for name in ("app.py", "tests/experiment_helpers.py"):
        shutil.copy2(REPO / name, root / Path(name).name)
    for path, text in PLUGINS.items():
        (root / path).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    (root / "check_plugins.py").write_text(CHECKS, encoding="utf-8")
    # The copy is the working directory (python -m) or the script's folder: first on the import path, so its
    # know_core wins over the installed one (CHECKS asserts it).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KNOW_RAISE_PAGE_ERRORS": "1"}
    return root, env


def run(copy, *args: str) -> subprocess.CompletedProcess:
    root, env = copy
    done = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_plugin_files_are_listed_by_the_cli(copy):
    forget = run(copy, "-m", "know_core", "forget", "--help").stdout
    assert "tiny_linear" in forget and "stripes" in forget
    assert "halfstep" in run(copy, "-m", "know_core", "demo", "--help").stdout
    predict = run(copy, "-m", "know_core", "predict", "--help").stdout
    assert "--frac" in predict and "halfstep only: share of the last step" in predict


def test_plugin_files_reach_the_pipeline_the_form_and_the_pages(copy):
    root, _ = copy
    out = json.loads(run(copy, "check_plugins.py", str(root)).stdout.strip().splitlines()[-1])
    assert Path(out["package"]).resolve().parent == (root / "know_core").resolve()
    assert "known" in out["short"] and "source.stages = 4" in out["short"] and "at least 5" in out["short"]
    assert {"halfstep", "shrink:halfstep", "taskvector", "naive"} <= set(out["rows"])
    assert "halfstep" in out["form_methods"] and "tiny_linear" in out["form_models"]
    assert out["compare"].get("halfstep") == "#123456" and "shrink:halfstep" in out["compare"]
    assert out["scaling"].get("halfstep") == "#123456"
