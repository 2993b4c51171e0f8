#!/usr/bin/env python
"""Build the course's documentation site offline: `nbs/*.ipynb` -> `_docs/*.html`.

The same notebooks also render with `nbdev_docs` (Quarto) where Quarto is installed; this builder
needs only the packages in `.venv` (plus Node.js for KaTeX, installed on demand from npm), and the
site it writes needs no network at view time.

    .venv/bin/python tools/build_docs.py                  # build _docs/ from nbs/
    .venv/bin/python tools/build_docs.py --check-sidebar  # only check nbs/sidebar.yml against nbs/
    .venv/bin/python tools/build_docs.py --write-sidebar  # rewrite nbs/sidebar.yml from the notebooks present
    .venv/bin/python tools/build_docs.py --nbs /tmp/executed --out /tmp/site   # e.g. executed copies

How a page is made:
1. nbdev's own processing pipeline (`nbdev.processors.FilterDefaults`, what `nbdev_proc_nbs` runs
   for Quarto): frontmatter from the H1 and `> description`, `show_doc` cells added after exported
   definitions and executed, `#| hide` cells removed, links to documented symbols, ...
   `#| export` cells are shown as folded-open "Exported source" (what nbdev does for `#| exports`);
   `--export-code hide` gives nbdev's default instead, where only the `show_doc` output shows.
2. nbconvert's `HTMLExporter` with a small template (below) that honours the Quarto cell options
   nbdev leaves (`echo`, `output`, `include`, `code-fold`, `fig-cap`, ...), with the saved outputs;
   images are written next to the pages (`<page>_files/`).
3. Math (`$...$`, `$$...$$`, `\\begin{env}`) is typeset at build time: with KaTeX run by Node.js
   (its CSS and fonts are copied into `_docs/katex/`) or, without Node.js, as MathML (latex2mathml),
   which browsers render natively.
4. A page layout with the sidebar (order and entries from `nbs/sidebar.yml`, titles from each
   notebook's H1), a table of contents, and previous/next links; links to `*.ipynb` become links to
   the pages, and links into the published site (`doc_host` + `doc_baseurl`) become relative.
"""
from __future__ import annotations

import argparse, json, multiprocessing as mp, os, re, shutil, subprocess, sys, time
from concurrent.futures import ProcessPoolExecutor
from html import escape, unescape
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KATEX_VERSION = "0.19.1"                      # npm package, installed into .cache/katex on first use
KATEX_PREFIX = REPO / ".cache" / "katex"      # .cache/ is gitignored
CACHE_DIR = REPO / ".cache" / "build_docs"    # processed pages, keyed by everything they depend on
SITE_CSS = Path(__file__).resolve().parent / "docs_site.css"
PYGMENTS_STYLE = "friendly"
MATH_OPEN, MATH_CLOSE = "\ue000", "\ue001"    # private-use characters around math placeholders


class BuildError(Exception):
    "A problem with the notebooks or the configuration, reported without a traceback."


def log(*a): print(*a, flush=True)


# --------------------------------------------------------------------------------------------
# Notebooks and the sidebar
# --------------------------------------------------------------------------------------------
def course_key(rel: str):
    "index.ipynb first, then by file name: 00_core, 01_data, 01a_formats, 02_text, ..."
    return (0 if rel == "index.ipynb" else 1, rel)


def find_notebooks(nbs: Path) -> list[str]:
    "Notebooks under `nbs` (relative posix paths), skipping names and folders starting with `_` or `.`."
    res = []
    for p in nbs.rglob("*.ipynb"):
        rel = p.relative_to(nbs)
        if any(part.startswith(("_", ".")) for part in rel.parts): continue
        res.append(rel.as_posix())
    return sorted(res, key=course_key)


def page_name(rel: str) -> str:
    "The html page of a notebook, named as nbdev/Quarto name it: `00_core.ipynb` -> `core.html`."
    p = Path(rel)
    return p.with_name(re.sub(r"^\d+[a-zA-Z0-9]*_", "", p.name.lower())).with_suffix(".html").as_posix()


def _flatten_sidebar(items, section=None, out=None):
    out = [] if out is None else out
    for it in items or []:
        if isinstance(it, str): out.append((section, it, None))
        elif isinstance(it, dict) and "section" in it and isinstance(it.get("contents"), list):
            _flatten_sidebar(it["contents"], it.get("section"), out)
        elif isinstance(it, dict) and "href" in it: out.append((section, str(it["href"]), it.get("text")))
        elif isinstance(it, dict) and "contents" in it and isinstance(it["contents"], str):
            raise BuildError(f"sidebar.yml: automatic contents ({it['contents']!r}) are not supported; list the notebooks")
        else: raise BuildError(f"sidebar.yml: cannot read the entry {it!r}")
    return out


def read_sidebar(path: Path):
    "Entries `(section, notebook, text)` of a Quarto `sidebar.yml`, in order."
    import yaml
    try: data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e: raise BuildError(f"{path}: not valid YAML: {e}")
    sb = (data.get("website") or {}).get("sidebar") if isinstance(data, dict) else None
    if isinstance(sb, list): sb = sb[0] if sb else {}
    if not isinstance(sb, dict) or "contents" not in sb:
        raise BuildError(f"{path}: expected `website: sidebar: contents: [...]`")
    return [(sec, f[2:] if f.startswith("./") else f, txt) for sec, f, txt in _flatten_sidebar(sb["contents"])]


def check_sidebar(nbs: Path, sidebar: Path) -> list[tuple]:
    "The sidebar's entries; raises `BuildError` unless it lists exactly the notebooks in `nbs`, once each."
    entries = read_sidebar(sidebar)
    listed = [f for _, f, _ in entries]
    present = find_notebooks(nbs)
    others = [f for f in listed if not f.endswith(".ipynb")]
    dups = sorted({f for f in listed if listed.count(f) > 1})
    unlisted = [f for f in present if f not in listed]
    missing = [f for f in listed if f.endswith(".ipynb") and f not in present]
    problems = []
    if unlisted: problems.append("notebooks not listed in it:    " + ", ".join(unlisted))
    if missing: problems.append("listed notebooks that are gone: " + ", ".join(missing))
    if dups: problems.append("listed more than once:          " + ", ".join(dups))
    if others: problems.append("entries that are not notebooks (this builder renders notebooks only): " + ", ".join(others))
    if problems:
        raise BuildError(f"{_rel(sidebar)} does not list exactly the notebooks in {_rel(nbs)}/:\n  "
                         + "\n  ".join(problems)
                         + f"\nEdit {_rel(sidebar)}, or regenerate it in course order with:\n"
                         + f"  .venv/bin/python tools/build_docs.py --write-sidebar"
                         + ("" if nbs.resolve() == (REPO / "nbs").resolve() else f" --nbs {nbs}"))
    return entries


def write_sidebar(nbs: Path, sidebar: Path):
    "Write `sidebar.yml` (nbdev's format) listing the notebooks present in course order."
    lines = ["website:", "  sidebar:", "    contents:"] + [f"      - {f}" for f in find_notebooks(nbs)]
    sidebar.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(f"wrote {_rel(sidebar)}: {len(lines) - 3} notebooks")


def _rel(p: Path) -> str:
    try: return Path(p).resolve().relative_to(REPO).as_posix()
    except ValueError: return str(p)


# --------------------------------------------------------------------------------------------
# Markdown: the Pandoc/Quarto syntax nbdev emits or notebooks use, turned into what mistune reads
# --------------------------------------------------------------------------------------------
_re_fence = re.compile(r"^\s*(```|~~~)")
_re_div_open = re.compile(r"^(:{3,})\s*(?:\{([^}]*)\}|([\w-]+))\s*$")
_re_div_close = re.compile(r"^(:{3,})\s*$")
_re_link_attrs = re.compile(r"(!?)\[([^\]\n]*)\]\(([^)\s]+)(?:\s+\"([^\"]*)\")?\)\{([^}\n]*)\}")
_re_span_attrs = re.compile(r"(?<![\]!])\[([^\]\n]+)\]\{([^}\n]*)\}")
_re_heading_attrs = re.compile(r"^(#{1,6}\s.*?)\s*\{([^}\n]*)\}\s*$")
_re_attr_kv = re.compile(r"""([\w-]+)=(?:"([^"]*)"|'([^']*)'|(\S+))""")
_CALLOUTS = {"note": "Note", "tip": "Tip", "warning": "Warning", "important": "Important", "caution": "Caution"}


def parse_attrs(s: str) -> dict:
    "Pandoc attributes `{#id .class key=value}` as a dict with `id`, `class` (list) and the rest."
    d = {"class": []}
    for m in _re_attr_kv.finditer(s):
        d[m.group(1)] = next(g for g in m.groups()[1:] if g is not None)
    rest = _re_attr_kv.sub(" ", s)
    for tok in rest.split():
        if tok.startswith("#"): d["id"] = tok[1:]
        elif tok.startswith("."): d["class"].append(tok[1:])
    return d


def _attr_html(d: dict, skip=()) -> str:
    out = []
    if d.get("id"): out.append(f'id="{escape(d["id"])}"')
    if d.get("class"): out.append(f'class="{escape(" ".join(d["class"]))}"')
    for k, v in d.items():
        if k in ("id", "class") or k in skip: continue
        if k in ("width", "height") and re.fullmatch(r"[\d.]+%|[\d.]+(px|em|rem|in|cm)", v):
            out.append(f'style="{k}:{escape(v)}"')
        elif k in ("target", "title", "style", "alt", "width", "height", "rel"): out.append(f'{k}="{escape(v)}"')
    return " ".join(out)


def _link_with_attrs(m, page=None):
    bang, text, url, title, attrs = m.groups()
    d = parse_attrs(attrs)
    if title: d["title"] = title
    if bang:
        if page: url = page.image_src(url)
        return f'<img src="{escape(url)}" alt="{escape(text)}" {_attr_html(d)}>'
    if page: url = page.href(url)
    return f'<a href="{escape(url)}" {_attr_html(d)}>{text}</a>'


def _span_with_attrs(m):
    text, attrs = m.groups()
    return f"<span {_attr_html(parse_attrs(attrs))}>{text}</span>"


def pandoc_compat(md: str, page=None) -> str:
    "Rewrite Pandoc-only markdown (fenced divs/callouts, `{...}` attributes) into HTML that mistune keeps."
    out, in_fence, depth = [], False, 0
    for line in md.splitlines():
        if _re_fence.match(line): in_fence = not in_fence; out.append(line); continue
        if in_fence: out.append(line); continue
        m = _re_div_open.match(line)
        if m:
            d = parse_attrs(m.group(2)) if m.group(2) is not None else {"class": [m.group(3)]}
            callout = next((c.split("-", 1)[1] for c in d["class"] if c.startswith("callout-")), None)
            cls = d["class"] + (["callout"] if callout else [])
            d["class"] = cls
            title = d.pop("title", None) or (_CALLOUTS.get(callout, callout.title()) if callout else None)
            head = f'<div class="callout-title">{escape(title)}</div>' if title else ""
            out += ["", f"<div {_attr_html(d)}>{head}", ""]
            depth += 1
            continue
        if _re_div_close.match(line) and depth:
            out += ["", "</div>", ""]; depth -= 1; continue
        m = _re_heading_attrs.match(line)
        if m:
            d = parse_attrs(m.group(2))
            line = m.group(1) + (f" <!--id:{d['id']}-->" if d.get("id") else "")
        if "]{" in line or ")]{" in line or "){" in line:
            line = _re_link_attrs.sub(lambda m: _link_with_attrs(m, page), line)
            line = _re_span_attrs.sub(_span_with_attrs, line)
        out.append(line)
    out += ["", "</div>", ""] * depth
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Rendering one notebook (runs in a worker process)
# --------------------------------------------------------------------------------------------
CELL_TEMPLATE = r"""
{%- extends 'display_priority.j2' -%}

{%- block codecell -%}
{%- set d = cell.metadata.get('docs', {}) -%}
<div class="cell{{ ' ' ~ d.classes if d.classes }}"{{ (' id="' ~ (d.id | escape_html) ~ '"') if d.id }}>
{{ super() }}
</div>
{%- endblock codecell -%}

{%- block input_group -%}
{%- set d = cell.metadata.get('docs', {}) -%}
{%- if d.get('echo', True) and cell.source.strip() -%}
{%- set code -%}
<div class="sourceCode cell-code">{{ cell.source | highlight_code(metadata=cell.metadata) }}</div>
{%- endset -%}
{%- if d.fold -%}
<details class="code-fold"{{ ' open' if d.fold == 'show' }}><summary>{{ d.summary | escape_html }}</summary>{{ code }}</details>
{%- else -%}{{ code }}{%- endif -%}
{%- endif -%}
{%- endblock input_group -%}

{%- block output -%}
{%- set d = cell.metadata.get('docs', {}) -%}
{%- if output.output_type == 'stream' -%}
<div class="cell-output cell-output-{{ output.name }}"><pre><code>{{ output.text | ansi2html }}</code></pre></div>
{%- elif output.output_type == 'error' -%}
<div class="cell-output cell-output-error"><pre><code>{{ output.traceback | join('\n') | ansi2html }}</code></pre></div>
{%- elif d.asis -%}
{{ super() }}
{%- elif d.figcap and (output.data | filter_data_type | first) in ['image/png', 'image/jpeg', 'image/svg+xml'] -%}
<div class="cell-output cell-output-display"><figure class="figure">{{ super() }}<figcaption>{{ d.figcap | escape_html }}</figcaption></figure></div>
{%- else -%}
<div class="cell-output cell-output-display">{{ super() }}</div>
{%- endif -%}
{%- endblock output -%}

{%- block execute_result -%}
{%- block data_priority scoped -%}{{ super() }}{%- endblock data_priority -%}
{%- endblock execute_result -%}

{%- block data_png scoped -%}
<img src="{{ (output.metadata.filenames['image/png'] | posix_path) if 'image/png' in output.metadata.get('filenames', {}) else ('data:image/png;base64,' ~ output.data['image/png']) }}"
{%- set w = output | get_metadata('width', 'image/png') %}{% if w %} width="{{ w }}"{% endif %}
{%- set h = output | get_metadata('height', 'image/png') %}{% if h %} height="{{ h }}"{% endif %}
 alt="{{ (output | get_metadata('alt', 'image/png')) or cell.metadata.get('docs', {}).get('alt') or 'plot' }}">
{%- endblock data_png -%}

{%- block data_jpg scoped -%}
<img src="{{ (output.metadata.filenames['image/jpeg'] | posix_path) if 'image/jpeg' in output.metadata.get('filenames', {}) else ('data:image/jpeg;base64,' ~ output.data['image/jpeg']) }}"
{%- set w = output | get_metadata('width', 'image/jpeg') %}{% if w %} width="{{ w }}"{% endif %}
{%- set h = output | get_metadata('height', 'image/jpeg') %}{% if h %} height="{{ h }}"{% endif %}
 alt="{{ (output | get_metadata('alt', 'image/jpeg')) or cell.metadata.get('docs', {}).get('alt') or 'image' }}">
{%- endblock data_jpg -%}

{%- block data_svg scoped -%}
{%- if output.svg_filename or 'image/svg+xml' in output.metadata.get('filenames', {}) -%}
<img src="{{ (output.svg_filename or output.metadata.filenames['image/svg+xml']) | posix_path }}" alt="{{ cell.metadata.get('docs', {}).get('alt') or 'figure' }}">
{%- else -%}{{ output.data['image/svg+xml'] }}{%- endif -%}
{%- endblock data_svg -%}

{%- block data_html scoped -%}<div class="output-html">{{ output.data['text/html'] }}</div>{%- endblock data_html -%}
{%- block data_markdown scoped -%}{{ output.data['text/markdown'] | markdown2html }}{%- endblock data_markdown -%}
{%- block data_latex scoped -%}{{ output.data['text/latex'] | latex_output }}{%- endblock data_latex -%}
{%- block data_text scoped -%}<pre><code>{{ output.data['text/plain'] | ansi2html }}</code></pre>{%- endblock data_text -%}

{%- block markdowncell scoped -%}
{{ cell.source | markdown2html | strip_files_prefix }}
{%- endblock markdowncell -%}

{%- block rawcell scoped -%}
{%- if (cell.metadata.get('raw_mimetype', '') or cell.metadata.get('format', '')).lower() in ['text/html', 'html'] -%}
{{ cell.source }}
{%- endif -%}
{%- endblock rawcell -%}

{%- block unknowncell scoped -%}{%- endblock unknowncell -%}
"""

_re_qopt = re.compile(r"^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")


def split_quarto_options(src: str):
    "Leading `#| key: value` lines (the Quarto cell options nbdev keeps) as a dict, and the rest of the code."
    import yaml
    lines, opts, i = src.splitlines(), {}, 0
    while i < len(lines) and (m := _re_qopt.match(lines[i])):
        try: opts[m.group(1)] = yaml.safe_load(m.group(2)) if m.group(2) else True
        except yaml.YAMLError: opts[m.group(1)] = m.group(2)
        i += 1
    return opts, "\n".join(lines[i:]).strip("\n")


def _is_false(v): return v is False or str(v).lower() == "false"


def pandoc_slug(text: str) -> str:
    "Pandoc's auto identifier (what Quarto uses), so `#anchors` agree between the two sites."
    s = re.sub(r"[^\w\s.-]", "", text.strip().lower())
    s = re.sub(r"\s+", "-", s)
    s = re.sub(r"^[^a-z]+", "", s)
    return s or "section"


class PageState:
    "What the markdown renderer learns and decides while one page is converted: math, ids, contents, links, files."
    def __init__(self, job: dict, nb_path: Path):
        self.job, self.nb_path = job, nb_path
        self.nbs = Path(job["nbs"]).resolve()
        self.page_dir = Path(job["page"]).parent
        self.site_url = job["site_url"].rstrip("/")
        self.math, self.ids, self.toc, self.assets, self.warnings = [], set(), [], [], []
        self.n_md_images, self.seen_images = 0, set()

    def placeholder(self, tex: str, display: bool) -> str:
        self.math.append((tex, bool(display)))
        return f"{MATH_OPEN}{len(self.math) - 1}{MATH_CLOSE}"

    def heading_id(self, text_html: str) -> tuple[str, str, str]:
        "A unique id for a heading (its `{#id}` if it has one, else Pandoc's), the heading without the marker, its text."
        m = re.search(r"\s*<!--id:(\S+?)-->", text_html)
        if m: text_html = text_html[:m.start()] + text_html[m.end():]
        plain = unescape(re.sub(r"<[^>]+>", "", text_html)).strip()
        base = m.group(1) if m else pandoc_slug(plain)
        hid, n = base, 0
        while hid in self.ids: n += 1; hid = f"{base}-{n}"
        self.ids.add(hid)
        return hid, text_html, plain

    def href(self, url: str) -> str:
        "Links to notebooks become links to their pages; links into the published site become relative."
        from urllib.parse import urlsplit, unquote
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            if self.site_url and url.startswith(self.site_url + "/"):
                target, _, frag = url[len(self.site_url) + 1:].partition("#")
                target = target or "index.html"
                if target in self.job["page_map"].values():
                    return _relpath(target, self.page_dir) + (f"#{frag}" if frag else "")
            return url
        if parts.scheme or url.startswith(("#", "//")): return url
        path = unquote(parts.path)
        if not path.endswith(".ipynb"): return url
        try: rel_nb = (self.nb_path.parent / path).resolve().relative_to(self.nbs).as_posix()
        except ValueError: rel_nb = None
        if rel_nb in self.job["page_map"]:
            return _relpath(self.job["page_map"][rel_nb], self.page_dir) + (f"#{parts.fragment}" if parts.fragment else "")
        self.warnings.append(f"{self.job['rel']}: link to a notebook that is not in the site: {url}")
        return url

    def image_src(self, src: str) -> str:
        "A local image of a markdown cell is copied next to the page (same relative path)."
        from urllib.parse import unquote
        self.n_md_images += 1
        self.seen_images.add(src)
        if re.match(r"^(data:|[a-z][a-z0-9+.-]*://|//)", src, flags=re.I) or src.startswith("attachment:"): return src
        f = (self.nb_path.parent / unquote(src)).resolve()
        if not f.is_file(): self.warnings.append(f"{self.job['rel']}: image not found: {src}")
        elif not f.is_relative_to(self.nbs): self.warnings.append(f"{self.job['rel']}: image outside the notebooks folder: {src}")
        else: self.assets.append((str(f), os.path.normpath((self.page_dir / unquote(src)).as_posix())))
        return src


def _make_exporter(state: PageState):
    "An HTMLExporter whose markdown renderer typesets nothing but leaves math placeholders, and applies `state`'s rules."
    import jinja2
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
    from nbconvert.preprocessors import ExtractOutputPreprocessor
    from traitlets.config import Config
    try: from jinja2 import pass_context
    except ImportError: from jinja2 import contextfilter as pass_context

    class Renderer(IPythonRenderer):
        def block_math(self, body): return state.placeholder(body, True)
        def inline_math(self, body): return state.placeholder(body, False)
        def multiline_math(self, text): return state.placeholder(text.strip().strip("$"), True)
        def latex_environment(self, name, body): return state.placeholder(f"\\begin{{{name}}}{body}\\end{{{name}}}", True)
        def heading(self, text, level, **attrs):
            hid, text, plain = state.heading_id(text)
            if level in (2, 3): state.toc.append((level, hid, plain))
            return (f'<h{level} id="{escape(hid)}">{text}<a class="anchor" href="#{escape(hid)}" '
                    f'aria-label="Link to this section">#</a></h{level}>\n')
        def link(self, text, url, title=None): return super().link(text, state.href(url), title)
        def block_code(self, code, info=None):
            if info and info.strip(): return super().block_code(code, info)
            return f'<div class="highlight"><pre><code>{escape(code, quote=False)}</code></pre></div>\n'   # plain ``` blocks
        def image(self, text, url, title=None): return super().image(text, state.image_src(url), title)

    def latex_output(s):
        s = s.strip()
        m = re.fullmatch(r"\$\$(.*)\$\$|\$(.*)\$|\\\[(.*)\\\]", s, flags=re.S)
        return state.placeholder(next(g for g in m.groups() if g is not None) if m else s, True)

    class DocsExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = Renderer(escape=False, attachments=cell.get("attachments", {}), embed_images=False,
                                path=str(state.nb_path.parent), exclude_anchor_links=True)
            return MarkdownWithMath(renderer=renderer).render(pandoc_compat(source, state))

        def from_notebook_node(self, nb, resources=None, **kw):
            # HTMLExporter's version, less its BeautifulSoup pass over the whole page (alt texts, tabindex): slow on
            # big pages, and the template writes alt texts itself
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            self.register_filter("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self,
                                                                             resources=resources))
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    c = Config()
    c.HTMLExporter.template_name = "classic"          # search path for display_priority.j2 and friends
    c.HTMLExporter.template_file = "nbdocs.html.j2"
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.exclude_anchor_links = True
    c.NbConvertBase.display_data_priority = ["text/html", "text/markdown", "image/svg+xml", "text/latex",
                                             "image/png", "image/jpeg", "text/plain"]
    c.ExtractOutputPreprocessor.output_filename_template = "{unique_key}_{cell_index}_{index}{extension}"
    c.ExtractOutputPreprocessor.extract_output_types = {"image/png", "image/jpeg", "image/svg+xml", "application/pdf"}
    ex = DocsExporter(config=c, extra_loaders=[jinja2.DictLoader({"nbdocs.html.j2": CELL_TEMPLATE})])
    ex.register_preprocessor(ExtractOutputPreprocessor(config=c), enabled=True)
    ex.register_filter("latex_output", latex_output)
    ex.log.setLevel("ERROR")
    return ex


def _nbdev_process(nb_path: Path, export_code: str, safe_exec: bool = False):
    "Run nbdev's documentation processors (as `nbdev_proc_nbs` does) on a notebook; returns it and its frontmatter."
    import ast, warnings as _w
    from execnb.nbio import read_nb
    from nbdev.process import NBProcessor, Processor
    from nbdev import processors as P

    class show_export_code(Processor):
        "Treat `#| export` like `#| exports`: show the exported code (folded open) after its `show_doc`."
        def begin(self):
            for c in self.nb.cells:
                d = getattr(c, "directives_", None)
                if d and "export" in d: d["exports"] = d.pop("export")

    class order_exported_source(Processor):
        "After nbdev's `mv_exports`: a shown export cell goes after all its `show_doc`s, which follow definition order."
        def begin(self):
            cells, i = self.nb.cells, 0
            while i < len(cells):
                c = cells[i]
                if c.cell_type == "code" and "exports" in (getattr(c, "directives_", None) or {}):
                    lo, hi = i, i + 1
                    if lo > 0 and getattr(cells[lo - 1], "has_sd", 0): lo -= 1
                    while hi < len(cells) and getattr(cells[hi], "has_sd", 0): hi += 1
                    docs = [d for d in cells[lo:hi] if d is not c]
                    def pos(d, src=c.source):
                        m = re.search(r"show_doc\((\w+)", d.source or "")
                        k = re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{m.group(1)}\b", src, re.M) if m else None
                        return k.start() if k else len(src)
                    cells[lo:hi] = sorted(docs, key=pos) + [c]
                    i = hi
                else: i += 1

    class safe_exec_show_docs(P.exec_show_docs):
        "Like nbdev's `exec_show_docs`, but a cell that mixes imports with other code is not run."
        def __call__(self, cell):
            trees = cell.parsed_() if cell.cell_type == "code" else None
            if trees and not (cell.directives_.keys() & {"export", "exports", "exporti", "exec_doc"}) \
               and not P._show_docs(trees) and not all(isinstance(t, (ast.Import, ast.ImportFrom)) for t in trees): return
            return super().__call__(cell)

    nb = read_nb(nb_path)
    procs = list(P.FilterDefaults().procs())
    if safe_exec: procs = [safe_exec_show_docs if p is P.exec_show_docs else p for p in procs]
    if export_code == "show": procs = [show_export_code] + procs + [order_exported_source]
    old = os.environ.get("IN_TEST")
    os.environ["IN_TEST"] = "1"                    # as nbdev_proc_nbs does while executing show_doc cells
    try:
        with _w.catch_warnings(record=True) as caught:
            _w.simplefilter("always")
            NBProcessor(nb=nb, procs=procs).process()
    finally:
        if old is None: os.environ.pop("IN_TEST", None)
        else: os.environ["IN_TEST"] = old
    notes = []
    for w in caught:
        msg = str(w.message)
        if msg.startswith("Found cells containing imports and other code"):
            first = next((l for l in msg.split("---")[1].strip().splitlines() if l.strip()), "") if "---" in msg else ""
            notes.append(f"cell mixes imports with other code, so nbdev runs it for show_doc: {first[:70]!r}")
        else: notes.append(f"{w.category.__name__}: {msg.splitlines()[0][:160] if msg else ''}")
    return nb, dict(getattr(nb, "frontmatter_", {}) or {}), notes


def _to_nbformat(nb, nbs_dir: Path, rel: str, warnings: list):
    "The processed notebook as an nbformat node, with Quarto cell options applied and stored in `metadata.docs`."
    import nbformat
    from execnb.nbio import nb2dict
    cells = []
    for cell in nb.cells:
        showdoc = bool(cell.get("has_sd")) or (cell.cell_type == "code" and re.search(r"^\s*show_doc\(", cell.source or "", re.M))
        d = nb2dict(cell)
        d = {k: v for k, v in d.items() if k in ("cell_type", "source", "metadata", "outputs", "execution_count", "id", "attachments")}
        src = "".join(d.get("source", []))
        if d["cell_type"] == "raw" and src.lstrip().startswith("---"): continue          # the frontmatter
        if d["cell_type"] == "markdown" and src.strip().startswith("<!-- WARNING: THIS FILE WAS AUTOGENERATED"): continue
        if d["cell_type"] == "code":
            opts, src = split_quarto_options(src)
            docs = {}
            if _is_false(opts.get("include", True)): continue
            if _is_false(opts.get("echo", True)): docs["echo"] = False
            if _is_false(opts.get("output", True)): d["outputs"] = []
            if str(opts.get("output", "")).lower() == "asis": docs["asis"] = True
            if _is_false(opts.get("warning", True)):
                d["outputs"] = [o for o in d.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            fold = opts.get("code-fold")
            if fold and not _is_false(fold):
                docs["fold"] = "show" if str(fold).lower() == "show" else "hide"
                docs["summary"] = str(opts.get("code-summary", "Code"))
            if opts.get("fig-cap"): docs["figcap"] = str(opts["fig-cap"])
            if opts.get("fig-alt"): docs["alt"] = str(opts["fig-alt"])
            if opts.get("label"): docs["id"] = str(opts["label"])
            classes = [c for c in [("showdoc" if showdoc else ""), ("cell-asis" if docs.get("asis") else "")] if c]
            if opts.get("classes"): classes += str(opts["classes"]).replace(".", " ").split()
            if classes: docs["classes"] = " ".join(classes)
            d.setdefault("metadata", {})["docs"] = docs
            d["source"] = src
            if not src.strip() and not d.get("outputs"): continue
            errs = [o for o in d.get("outputs", []) if o.get("output_type") == "error"]
            if errs: warnings.append(f"{rel}: a cell has an error output ({errs[0].get('ename')}: {errs[0].get('evalue')})")
        else:
            d["source"] = src
            if not src.strip(): continue
        cells.append(d)
    raw = {"cells": cells, "metadata": dict(nb2dict(nb.get("metadata", {}))), "nbformat": 4, "nbformat_minor": 5}
    import warnings as _w
    with _w.catch_warnings():
        _w.simplefilter("ignore")
        return nbformat.reads(json.dumps(raw), as_version=4)


def render_notebook(job: dict) -> dict:
    "Process and convert one notebook to an HTML fragment with math placeholders (runs in a worker)."
    os.chdir(REPO)                                          # nbdev reads settings.ini from the working directory
    t0 = time.perf_counter()
    # jsonschema (imported by nbformat) builds ~40 grammars on import when rfc3987_syntax is installed (2-3 s per
    # worker) only to validate IRI formats, which notebooks do not use: make that optional import fail fast
    if "jsonschema" not in sys.modules: sys.modules.setdefault("rfc3987_syntax", None)
    nbs_dir, rel, page = Path(job["nbs"]), job["rel"], job["page"]
    nb_path = nbs_dir / rel
    warnings = []
    main_mod = sys.modules.get("__main__")
    try: nb, fm, notes = _nbdev_process(nb_path, job["export_code"])
    except Exception as e:
        msg = f"{rel}: nbdev's processing failed (nbdev_docs would fail too): {type(e).__name__}: {e}"
        if e.__cause__ is not None: msg += f"\n  caused by {type(e.__cause__).__name__}: {e.__cause__}"
        msg += ("\n  To build show_doc, nbdev runs the exported cells and every cell containing an import statement;"
                "\n  a cell that imports and also uses names defined in other cells fails. Put such imports in a cell"
                "\n  of their own (nbdev FAQ), or build anyway with --keep-going.")
        if not job.get("keep_going"): return {"rel": rel, "error": msg}
        warnings.append(msg.replace("\n", "\n    ") + "\n    (--keep-going: retried running only exported and import-only cells)")
        try: nb, fm, notes = _nbdev_process(nb_path, job["export_code"], safe_exec=True)
        except Exception as e2: return {"rel": rel, "error": f"{rel}: nbdev's processing failed again: {type(e2).__name__}: {e2}"}
    finally: sys.modules["__main__"] = main_mod      # IPython's shell (run for show_doc) replaces __main__
    warnings += [f"{rel}: {n}" for n in notes]
    t_nbdev = time.perf_counter() - t0
    state = PageState(job, nb_path)
    stem = Path(page).with_suffix("").name
    try:
        nbf = _to_nbformat(nb, nbs_dir, rel, warnings)
        resources = {"unique_key": stem, "output_files_dir": f"{stem}_files", "metadata": {"path": str(nb_path.parent), "name": stem}}
        body, resources = _make_exporter(state).from_notebook_node(nbf, resources=resources)
    except Exception as e:
        import traceback
        return {"rel": rel, "error": f"{rel}: converting to HTML failed: {type(e).__name__}: {e}\n"
                                     + "".join(traceback.format_exc(limit=-3))}
    outputs = {(Path(page).parent / k).as_posix(): v for k, v in (resources.get("outputs") or {}).items()}
    n_images = sum(1 for c in nbf.cells for o in c.get("outputs", []) for t in ("image/png", "image/jpeg", "image/svg+xml")
                   if t in o.get("data", {}))
    # raw html <a href="x.ipynb"> and <img> in markdown (markdown links and images went through the renderer)
    body = re.sub(r'(<a\s[^>]*?href=")([^"#]+\.ipynb(?:#[^"]*)?)"',
                  lambda m: m.group(1) + escape(state.href(unescape(m.group(2)))) + '"', body)
    for src in re.findall(r'<img\s[^>]*?src="([^"]+)"', body):
        src = unescape(src)
        if not (src.startswith(f"{stem}_files/") or src.startswith("data:") or src in state.seen_images): state.image_src(src)
    warnings += state.warnings
    title = str(fm.get("title") or Path(rel).stem)
    return {"rel": rel, "page": page, "title": title, "description": str(fm.get("description") or ""),
            "body": body, "toc": state.toc, "ids": sorted(state.ids | set(map(unescape, re.findall(r'\sid="([^"]+)"', body)))),
            "links": [unescape(h) for h in re.findall(r'\shref="([^"]*)"', body)],
            "assets": state.assets, "outputs": outputs, "math": state.math, "warnings": warnings,
            "n_images": n_images + state.n_md_images, "seconds": (t_nbdev, time.perf_counter() - t0 - t_nbdev)}


def _cache_key(job: dict) -> str:
    "A page depends on its notebook, this builder, settings.ini, the package's code and the versions of the tools."
    import hashlib, importlib.metadata as md, configparser
    h = hashlib.sha256(json.dumps(job, sort_keys=True).encode())
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(REPO / "settings.ini")
    lib = REPO / cp["DEFAULT"].get("lib_path", "_none_")
    files = [Path(job["nbs"]) / job["rel"], Path(__file__), REPO / "settings.ini"] + sorted(lib.glob("*.py"))
    for f in files:
        h.update(str(f).encode())
        h.update(f.read_bytes() if f.is_file() else b"-")
    for pkg in ("nbdev", "nbconvert", "execnb", "fastcore", "mistune", "pygments", "nbformat"):
        try: h.update(f"{pkg}={md.version(pkg)}".encode())
        except md.PackageNotFoundError: pass
    h.update(sys.version.encode())
    return h.hexdigest()[:32]


def render_cached(job: dict) -> dict:
    "`render_notebook`, or its result from an earlier build when nothing it depends on changed."
    import pickle
    f = CACHE_DIR / f"{_cache_key(job)}.pickle" if job.get("cache") else None
    if f and f.is_file():
        try:
            with open(f, "rb") as fh: res = pickle.load(fh)
            os.utime(f)
            return {**res, "cached": True}
        except Exception: pass
    res = render_notebook(job)
    if f and "error" not in res:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh: pickle.dump(res, fh)
        os.replace(tmp, f)
    return res


def _prune_cache(days: float = 3, keep: int = 60):
    "Drop cached pages not used for `days`, and all but the `keep` most recently used."
    if not CACHE_DIR.is_dir(): return
    files = sorted(CACHE_DIR.glob("*.pickle"), key=lambda f: f.stat().st_mtime, reverse=True)
    old = time.time() - days * 86400
    for i, f in enumerate(files):
        if i >= keep or f.stat().st_mtime < old: f.unlink(missing_ok=True)


def _relpath(target: str, from_dir: Path) -> str:
    return Path(os.path.relpath(target, from_dir.as_posix() or ".")).as_posix()


# --------------------------------------------------------------------------------------------
# Math
# --------------------------------------------------------------------------------------------
KATEX_JS = r"""
const katex = require(process.argv[1]);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const macros = {};
  const out = JSON.parse(input).map(([page, tex, display]) => {
    const m = macros[page] || (macros[page] = {});
    const opts = {displayMode: display, throwOnError: true, strict: 'ignore', output: 'htmlAndMathml', macros: m, globalGroup: true};
    try { return {html: katex.renderToString(tex, opts)}; }
    catch (e) {
      let html;
      try { html = katex.renderToString(tex, {...opts, throwOnError: false}); }
      catch (e2) { html = null; }
      return {html, error: String(e && e.message || e)};
    }
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def find_katex(install: bool = True) -> Path | None:
    "KaTeX's npm package: $KATEX_DIR, .cache/katex, Debian's node-katex, or installed from npm into .cache/katex."
    if not shutil.which("node"): return None
    cands = [Path(os.environ["KATEX_DIR"])] if os.environ.get("KATEX_DIR") else []
    cands += [KATEX_PREFIX / "node_modules" / "katex", Path("/usr/share/nodejs/katex")]
    for c in cands:
        if (c / "package.json").is_file() and (c / "dist" / "katex.min.css").is_file(): return c
    if install and shutil.which("npm"):
        log(f"installing KaTeX {KATEX_VERSION} from npm into {_rel(KATEX_PREFIX)}/ (once) ...")
        KATEX_PREFIX.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["npm", "install", "--prefix", str(KATEX_PREFIX), f"katex@{KATEX_VERSION}",
                            "--no-audit", "--no-fund", "--loglevel=error"], capture_output=True, text=True)
        c = KATEX_PREFIX / "node_modules" / "katex"
        if r.returncode == 0 and (c / "dist" / "katex.min.css").is_file(): return c
        log("  npm install failed:\n  " + (r.stderr or r.stdout).strip().replace("\n", "\n  "))
    return None


def render_math_katex(items: list, katex_dir: Path) -> list:
    if not items: return []
    r = subprocess.run(["node", "-e", KATEX_JS, str(katex_dir)], input=json.dumps(items), capture_output=True,
                       text=True, encoding="utf-8")
    if r.returncode != 0: raise BuildError(f"KaTeX (node) failed:\n{r.stderr.strip()}")
    return json.loads(r.stdout)


def render_math_mathml(items: list) -> list:
    try: from latex2mathml.converter import convert
    except ImportError:
        raise BuildError("math needs either Node.js (for KaTeX) or the Python package latex2mathml "
                         "(pip install latex2mathml; it is in settings.ini's dev_requirements)")
    out = []
    for _, tex, display in items:
        try: out.append({"html": convert(tex, display="block" if display else "inline")})
        except Exception as e: out.append({"html": None, "error": f"{type(e).__name__}: {e}"})
    return out


# --------------------------------------------------------------------------------------------
# The page layout
# --------------------------------------------------------------------------------------------
PAGE_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tools/build_docs.py (nbdev {{ nbdev_version }}, nbconvert {{ nbconvert_version }})">
<title>{{ page.plain_title }}{% if not is_index %} – {{ site.title }}{% endif %}</title>
{%- if page.description %}
<meta name="description" content="{{ page.plain_description }}">{% endif %}
{%- if katex %}
<link rel="stylesheet" href="{{ root }}katex/katex.min.css">{% endif %}
<link rel="stylesheet" href="{{ root }}site.css">
{%- if user_css %}
<link rel="stylesheet" href="{{ root }}styles.css">{% endif %}
</head>
<body>
<header class="navbar">
  <button class="nav-toggle" aria-label="Toggle the list of pages" onclick="document.body.classList.toggle('nav-open')">&#9776;</button>
  <a class="brand" href="{{ root }}index.html">{{ site.title }}</a>
  {%- if site.repo_url %}
  <a class="repo" href="{{ site.repo_url }}" title="Source repository">
    <svg viewBox="0 0 16 16" width="18" height="18" aria-hidden="true"><path fill="currentColor" d="M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82.64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0016 8c0-4.42-3.58-8-8-8z"/></svg>
    <span>Source</span></a>
  {%- endif %}
</header>
<div class="layout">
<nav class="sidebar" aria-label="Pages">
<ul>
{%- for sec in sections %}
{%- if sec.name %}
<li class="sidebar-section">{{ sec.name }}</li>{% endif %}
{%- for p in sec.pages %}
<li><a href="{{ root }}{{ p.page }}"{% if p.page == page.page %} class="active" aria-current="page"{% endif %}>{{ p.title }}</a></li>
{%- endfor %}
{%- endfor %}
</ul>
</nav>
<main class="content" id="content">
<header class="page-header">
<h1 class="title">{{ page.title }}</h1>
{%- if page.description %}
<div class="description">{{ page.description }}</div>{% endif %}
</header>
{{ body }}
<nav class="page-nav">
{%- if prev %}<a class="prev" href="{{ root }}{{ prev.page }}"><span>&larr; Previous</span>{{ prev.title }}</a>{% else %}<span></span>{% endif %}
{%- if next %}<a class="next" href="{{ root }}{{ next.page }}"><span>Next &rarr;</span>{{ next.title }}</a>{% endif %}
</nav>
<footer class="site-footer">Rendered from <code>{{ page.rel_src }}</code> with its saved outputs.</footer>
</main>
{%- if toc|length > 1 %}
<aside class="toc" aria-label="On this page">
<h2>On this page</h2>
<ul>
{%- for level, id, text in toc %}
<li class="toc-h{{ level }}"><a href="#{{ id }}">{{ text }}</a></li>
{%- endfor %}
</ul>
</aside>
{%- endif %}
</div>
</body>
</html>
"""


def inline_md(s: str) -> str:
    "A title's inline markdown (code, bold, italics) as HTML; titles come from H1s such as 'Command line: `cli`'."
    out = escape(s, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![*\w])[*_]([^*_]+)[*_](?![*\w])", r"<em>\1</em>", out)


def plain_md(s: str) -> str:
    "The text of a title, without its markdown."
    return unescape(re.sub(r"<[^>]+>", "", inline_md(s)))


def site_settings() -> dict:
    "Title, site url and repository from settings.ini."
    import configparser
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(REPO / "settings.ini")
    s = cp["DEFAULT"] if "DEFAULT" in cp else {}
    return {"title": s.get("title") or s.get("lib_name") or "docs",
            "site_url": (s.get("doc_host", "") + s.get("doc_baseurl", "")).rstrip("/"),
            "repo_url": s.get("git_url", ""), "description": s.get("description", "")}


def default_index(site: dict, pages: list) -> dict:
    "A front page listing the pages, for when there is no index.ipynb yet."
    items = "\n".join(f'<li><a href="{p["page"]}">{escape(p["title"])}</a></li>' for p in pages)
    return {"rel": None, "page": "index.html", "title": site["title"], "description": site["description"],
            "body": f'<p>There is no <code>index.ipynb</code> yet. The notebooks:</p>\n<ul>\n{items}\n</ul>',
            "toc": [], "ids": [], "links": [p["page"] for p in pages], "assets": [], "outputs": {}, "math": [],
            "warnings": [], "n_images": 0}


# --------------------------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------------------------
def build(args) -> int:
    t0 = time.perf_counter()
    nbs = Path(args.nbs).resolve()
    out = Path(args.out).resolve()
    if not nbs.is_dir(): raise BuildError(f"no notebooks folder: {args.nbs}")
    if out in (REPO, nbs) or out in REPO.parents or nbs.is_relative_to(out):
        raise BuildError(f"refusing to wipe {out}: choose an output folder of its own")
    if out.is_dir() and any(out.iterdir()) and not ((out / "site.json").exists() or (out / "index.html").exists()):
        raise BuildError(f"refusing to wipe {out}: it is not empty and holds no site (no index.html or site.json)")
    sidebar = nbs / "sidebar.yml"
    if sidebar.exists(): entries = check_sidebar(nbs, sidebar)
    elif nbs == (REPO / "nbs").resolve():
        raise BuildError(f"{_rel(sidebar)} is missing: create it with  .venv/bin/python tools/build_docs.py --write-sidebar")
    else:
        log(f"note: {sidebar} does not exist; using file-name order")
        entries = [(None, f, None) for f in find_notebooks(nbs)]
    if not entries: raise BuildError(f"no notebooks in {nbs}")
    rels = [f for _, f, _ in entries]
    page_map = {rel: page_name(rel) for rel in rels}
    clash = {p for p in page_map.values() if list(page_map.values()).count(p) > 1}
    if clash: raise BuildError("notebooks that would share a page: " + ", ".join(
        f"{r} -> {p}" for r, p in page_map.items() if p in clash))
    site = site_settings()

    # 1-2. nbdev processing and nbconvert, in worker processes
    jobs = [{"nbs": str(nbs), "rel": rel, "page": page_map[rel], "page_map": page_map, "site_url": site["site_url"],
             "export_code": args.export_code, "keep_going": args.keep_going} for rel in rels]
    results = [None] * len(jobs)
    if not args.no_cache:                     # cached pages are looked up here, without starting workers
        for i, j in enumerate(jobs):
            j["cache"] = True
            f = CACHE_DIR / f"{_cache_key(j)}.pickle"
            if f.is_file(): results[i] = render_cached(j)
    todo = sorted((i for i, r in enumerate(results) if r is None),          # the biggest notebooks first
                  key=lambda i: -(nbs / jobs[i]["rel"]).stat().st_size)
    n_workers = max(1, min(args.jobs, len(todo)))
    if len(todo) <= 1 or n_workers == 1:
        for i in todo: results[i] = render_cached(jobs[i])
    else:
        with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn")) as pool:
            for i, r in zip(todo, pool.map(render_cached, [jobs[i] for i in todo])): results[i] = r
    if not args.no_cache: _prune_cache()
    failed = [r["error"] for r in results if "error" in r]
    if failed: raise BuildError("\n".join(failed))
    t_render = time.perf_counter() - t0

    pages = results
    if "index.html" not in page_map.values():
        log("warning: there is no index.ipynb; writing a front page that lists the notebooks")
        pages = [default_index(site, results)] + results
    warnings = [w for r in pages for w in r["warnings"]]

    # 3. math
    items = [(i, tex, disp) for i, r in enumerate(pages) for tex, disp in r["math"]]
    engine, katex_dir = args.math, None
    if engine in ("auto", "katex"):
        katex_dir = find_katex(install=True) if items or engine == "katex" else find_katex(install=False)
        if katex_dir is None:
            if engine == "katex": raise BuildError("KaTeX needs Node.js and npm (or $KATEX_DIR); use --math mathml")
            engine = "mathml"
            if items: log("note: Node.js/KaTeX not available: math is written as MathML (latex2mathml)")
        else: engine = "katex"
    rendered = render_math_katex(items, katex_dir) if engine == "katex" else render_math_mathml(items)
    per_page = [[] for _ in pages]
    for (i, tex, disp), res in zip(items, rendered):
        if res.get("error"): warnings.append(f"{pages[i]['rel'] or 'index'}: math error: {res['error'].splitlines()[0]}  in  {tex.strip()[:80]!r}")
        html = res.get("html") or f'<code>{escape(tex)}</code>'
        if res.get("error"): html = f'<span class="math-error" title="{escape(res["error"].splitlines()[0])}">{html}</span>'
        if engine == "mathml" and disp: html = f'<div class="math-display">{html}</div>'
        per_page[i].append(html)
    for r, htmls in zip(pages, per_page):
        r["body"] = re.sub(f"{MATH_OPEN}(\\d+){MATH_CLOSE}", lambda m: htmls[int(m.group(1))], r["body"])
        leftover = re.findall(r"\$\$", re.sub(r"<(pre|code)[\s>].*?</\1>", "", r["body"], flags=re.S))
        if leftover: warnings.append(f"{r['rel']}: raw $$ left in the page")

    # 4. write the site
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    import jinja2, importlib.metadata as md
    tmpl = jinja2.Environment(autoescape=False).from_string(PAGE_TEMPLATE)
    sections, order = [], []
    if len(pages) > len(results):  # the generated front page
        sections.append({"name": None, "pages": [pages[0]]}); order.append(pages[0])
    by_rel = {r["rel"]: r for r in results}
    for sec, rel, text in entries:
        r = by_rel[rel]
        if text: r["title"] = str(text)
        if not sections or sections[-1]["name"] != sec: sections.append({"name": sec, "pages": []})
        sections[-1]["pages"].append(r)
        order.append(r)
    user_css = (nbs / "styles.css").is_file()
    for i, r in enumerate(order):
        page = Path(r["page"])
        root = "../" * (len(page.parts) - 1)
        r["rel_src"] = f"{_rel(nbs)}/{r['rel']}" if r["rel"] else "(generated)"
        html = tmpl.render(
            page={**r, "title": inline_md(r["title"]), "plain_title": escape(plain_md(r["title"])),
                  "description": inline_md(r["description"]), "plain_description": escape(plain_md(r["description"]))},
            site={**site, "title": escape(site["title"])},
            sections=[{"name": inline_md(sec["name"]) if sec["name"] else None,
                       "pages": [{"page": p["page"], "title": inline_md(p["title"])} for p in sec["pages"]]} for sec in sections],
            body=r["body"], toc=[(l, i_, escape(t)) for l, i_, t in r["toc"]], root=root,
            prev={**order[i - 1], "title": inline_md(order[i - 1]["title"])} if i > 0 else None,
            next={**order[i + 1], "title": inline_md(order[i + 1]["title"])} if i + 1 < len(order) else None,
            katex=engine == "katex", user_css=user_css, is_index=r["page"] == "index.html",
            nbdev_version=md.version("nbdev"), nbconvert_version=md.version("nbconvert"))
        (out / page).parent.mkdir(parents=True, exist_ok=True)
        (out / page).write_text(html, encoding="utf-8")
        for name, data in r["outputs"].items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        for src, dst in r["assets"]:
            (out / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / dst)
    css = SITE_CSS.read_text(encoding="utf-8") if SITE_CSS.is_file() else ""
    from pygments.formatters import HtmlFormatter
    css += f"\n/* Pygments ({PYGMENTS_STYLE}) */\n" + HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".highlight")
    css += "\n.highlight { background: var(--code-bg); }\n"
    (out / "site.css").write_text(css, encoding="utf-8")
    if user_css: shutil.copy2(nbs / "styles.css", out / "styles.css")
    if engine == "katex":
        (out / "katex").mkdir()
        shutil.copy2(katex_dir / "dist" / "katex.min.css", out / "katex" / "katex.min.css")
        shutil.copytree(katex_dir / "dist" / "fonts", out / "katex" / "fonts")
    (out / ".nojekyll").write_text("")
    manifest = {"title": site["title"], "math": engine, "pages": [
        {"page": r["page"], "source": r["rel"], "title": plain_md(r["title"]), "n_math": len(r["math"]), "n_images": r["n_images"],
         "sections": [t for _, _, t in r["toc"]]} for r in order]}
    (out / "site.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    # 5. check links between pages, and anchors
    ids = {r["page"]: set(r["ids"]) for r in order}
    notes = []
    for r in order:
        page_dir = Path(r["page"]).parent
        for href in r["links"]:
            if re.match(r"^[a-z][a-z0-9+.-]*:|^//", href, flags=re.I): continue
            path, _, frag = href.partition("#")
            target = os.path.normpath((page_dir / path).as_posix()) if path else r["page"]
            if path and not path.endswith(".ipynb") and not (out / target).exists(): warnings.append(f"{r['page']}: broken link {href}")
            elif frag and target in ids and frag not in ids[target]: notes.append(f"{r['page']} -> {target}#{frag}")

    if notes:   # nbdev links every documented symbol, methods included, though only show_doc'd ones get a heading
        log(f"note: {len(notes)} link(s) to anchors that do not exist (the page opens at its top): " + ", ".join(notes[:6])
            + (" ..." if len(notes) > 6 else ""))
    for w in warnings: log("warning:", w)
    if args.verbose:
        for r in results: log(f"  {r['rel']:<28} nbdev {r['seconds'][0]:5.1f} s   html {r['seconds'][1]:5.1f} s"
                              + ("   (cached)" if r.get("cached") else ""))
    dt = time.perf_counter() - t0
    n_img = sum(len(r["outputs"]) for r in order)
    n_cached = sum(1 for r in results if r.get("cached"))
    log(f"Built {len(order)} pages ({len(items)} math expressions, {n_img} output images; math: {engine}) "
        f"into {_rel(out)}/ in {dt:.1f} s (notebooks processed in {t_render:.1f} s: "
        f"{len(todo)} with {n_workers if todo else 0} worker(s), {n_cached} unchanged from the cache)")
    if warnings and args.strict:
        log(f"--strict: {len(warnings)} warning(s) count as errors")
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nbs", default="nbs", help="folder of notebooks (default: nbs)")
    p.add_argument("--out", default="_docs", help="output folder, wiped and rebuilt (default: _docs)")
    p.add_argument("--check-sidebar", action="store_true", help="only check that NBS/sidebar.yml lists exactly the notebooks")
    p.add_argument("--write-sidebar", action="store_true", help="rewrite NBS/sidebar.yml from the notebooks, in course order")
    p.add_argument("--math", choices=["auto", "katex", "mathml"], default="auto",
                   help="KaTeX via Node.js (auto: when available) or MathML via latex2mathml")
    p.add_argument("--export-code", choices=["show", "hide"], default="show",
                   help="show the code of `#| export` cells (folded open) or hide it as nbdev_docs does")
    p.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    p.add_argument("--keep-going", action="store_true",
                   help="if nbdev's show_doc execution fails on a notebook, warn and retry it running only exported and import-only cells")
    p.add_argument("--no-cache", action="store_true", help=f"process every notebook again (cache: {_rel(CACHE_DIR)}/)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the time spent on each notebook")
    p.add_argument("--strict", action="store_true", help="fail on warnings (broken links, math errors, error outputs)")
    args = p.parse_args(argv)
    args.nbs, args.out = str(Path(args.nbs).resolve()), str(Path(args.out).resolve())   # relative to where it was run
    os.chdir(REPO)                                                                     # nbdev reads settings.ini here
    nbs = Path(args.nbs)
    try:
        if args.write_sidebar: write_sidebar(nbs, nbs / "sidebar.yml"); return 0
        if args.check_sidebar:
            entries = check_sidebar(nbs, nbs / "sidebar.yml")
            log(f"{_rel(nbs / 'sidebar.yml')} lists the {len(entries)} notebooks in {_rel(nbs)}/")
            return 0
        return build(args)
    except BuildError as e:
        log(f"error: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
