"""docs/adding-a-model.md: its ten-line model registers, and trains through the Python API."""
import re
from pathlib import Path

from cascadevae.models import MODELS

DOC = Path(__file__).resolve().parent.parent / "docs" / "adding-a-model.md"


def test_the_page_s_model_registers_and_trains(tmp_path, monkeypatch):
    model_code, fit_code = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[:2]
    body = [line for line in model_code.strip().splitlines() if line.strip()]
    assert len(body) <= 14   # "ten lines" of model, plus imports and the decorator
    monkeypatch.chdir(tmp_path)
    try:
        exec(compile(model_code, str(DOC), "exec"), {})
        cls = MODELS["sparse-vae"]
        assert cls.Config.field_names() == ("latent_dim", "std_param", "beta", "l1_weight")
        assert cls.Config.schedule_kind == "constant"
        fit_code = fit_code.replace("iters=2000", "iters=4, batch_size=8, progress=False, mi_every=0")
        scope = {}
        exec(compile(fit_code, str(DOC), "exec"), scope)
        run = scope["run"]
        assert run.status == "finished" and run.config.model.l1_weight == 0.5
        assert all("l1" in r["extra"] for r in run.history())
    finally:
        MODELS.pop("sparse-vae", None)
