"""Write README.md from nbs/index.ipynb and its saved outputs (nbdev_readme needs Quarto; this does not).

Markdown cells are copied; code cells marked `#| hide` are dropped; code cells marked `#| echo: false`
show only their outputs (Markdown outputs as they are, text outputs in a code block)."""
import json, sys
from pathlib import Path

def directives(src: str) -> dict:
    out = {}
    for line in src.splitlines():
        if line.startswith("#|"):
            key, _, val = line[2:].strip().partition(":")
            out[key.strip()] = val.strip() or True
    return out

def cell_outputs(cell) -> list[str]:
    parts = []
    for o in cell.get("outputs", []):
        data = o.get("data", {})
        if "text/markdown" in data: parts.append("".join(data["text/markdown"]).strip())
        elif o.get("output_type") == "stream" and o.get("name") == "stdout": parts.append("```\n" + "".join(o["text"]).rstrip() + "\n```")
        elif "text/plain" in data: parts.append("```\n" + "".join(data["text/plain"]).rstrip() + "\n```")
    return parts

def make_readme(nb_path="nbs/index.ipynb") -> str:
    nb = json.loads(Path(nb_path).read_text())
    blocks = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown": blocks.append(src.strip()); continue
        d = directives(src)
        if d.get("hide") or d.get("include") == "false": continue
        if d.get("echo") != "false":
            code = "\n".join(l for l in src.splitlines() if not l.startswith("#|")).strip()
            if code: blocks.append("```python\n" + code + "\n```")
        blocks += cell_outputs(cell)
    note = "<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->"
    return "\n\n".join([blocks[0], note] + blocks[1:]) + "\n"

if __name__ == "__main__":
    text = make_readme(*sys.argv[1:2])
    if "--check" in sys.argv:
        if Path("README.md").read_text() != text: sys.exit("README.md is out of date: run `make readme` and commit it")
    else: Path("README.md").write_text(text)
