"""Saved notebook outputs stay readable and small: no Jupyter widget state (tqdm's progress widgets saved by an
executed notebook carry megabytes of state that renders as nothing outside a live kernel)."""
import json
from pathlib import Path
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "nbs").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_widget_state(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: widget state in the notebook metadata; execute with CROSSMODAL_COURSE_PROGRESS=0"
    cells = [i for i, c in enumerate(nb["cells"]) if any(WIDGET in o.get("data", {}) for o in c.get("outputs", []))]
    assert not cells, f"{path.name}: progress-bar widgets saved in the outputs of cells {cells}"
