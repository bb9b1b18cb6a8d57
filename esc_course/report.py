"""The run report: ``index.html`` (every lab's headline and mode) and one page per lab, plus the terminal summary.

Pages are built only from what the run wrote on disk: each lab folder's ``results.json`` (config, metrics, tables,
captions, figures) and its PNGs, so ``python -m esc_course.report RUN_DIR`` rebuilds them from ``summary.json`` at any
time. All pages live in the run folder (``index.html``, ``lab-<name>.html``) and link figures where the lab wrote them.
Headings are Korean with the English terms beside them, as in the notebooks.
"""

from __future__ import annotations

import html
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from esc_course.files import write_text


@dataclass
class RunSummary:
    lab: str
    title: str
    metric: str | None
    value: float | None
    seconds: float
    folder: str  # relative to the index
    ok: bool = True
    error: str = ""
    metrics: dict = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)


def summary_table(rows: Sequence[RunSummary]) -> str:
    from esc_course.viz import table_text

    return table_text([
        {"lab": r.lab, "headline": r.metric or "", "value": r.value if r.ok else "FAILED", "seconds": round(r.seconds, 1)}
        for r in rows
    ])


_STYLE = """
body{font-family:system-ui,'Noto Sans KR','Malgun Gothic',sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;
color:#222;line-height:1.5}
nav{display:flex;gap:1.5em;padding:.5em 0;border-bottom:1px solid #ddd;margin-bottom:1em}
nav a{text-decoration:none}
table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border:1px solid #ccc;padding:3px 9px}
th{background:#f3f3f3}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1em 0 2em}
figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#444;font-size:.95em}
summary{cursor:pointer;color:#225}
.fail{color:#b00}
img.thumb{width:180px;border:1px solid #eee}
.muted{color:#777;font-size:.9em}
"""


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape("" if v is None else str(v))


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!doctype html>", "<html lang='ko'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>", *body, "</body></html>"])


def _href(path: str) -> str:
    return html.escape(path.replace(os.sep, "/"), quote=True)


def _lab_page(r: RunSummary) -> str:
    return f"lab-{r.lab}.html"


def _results(run_dir: Path, r: RunSummary) -> dict:
    """The lab's results.json, or {} when the lab failed before writing it (or it cannot be read)."""
    path = run_dir / r.folder / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _mode(results: dict) -> str:
    quick = results.get("config", {}).get("quick")
    return {True: "quick", False: "full"}.get(quick, "?")


def default_notebooks() -> Path | None:
    """The checkout's ``notebooks/`` folder (an editable install), or None where the package has no checkout."""
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    return folder if folder.is_dir() else None


def _notebook(lab: str, notebooks: Path | None) -> Path | None:
    if notebooks is None:
        return None
    found = sorted(Path(notebooks).glob(f"week[0-9][0-9]_{lab}.ipynb"))
    return found[0] if found else None


def _figures(run_dir: Path, r: RunSummary, results: dict) -> list[str]:
    """The lab's PNGs that are on disk, in the lab's order (a figure that is not there is not linked)."""
    return [f for f in (results.get("figures") or r.figures) if (run_dir / r.folder / f).is_file()]


def _index(run_dir: Path, rows: Sequence[RunSummary], results: list[dict]) -> str:
    env = next((res.get("env") for res in results if res.get("env")), {}) or {}
    body = [f"<h1>실행 보고서 (run report) <span class='muted'>{html.escape(run_dir.name)}</span></h1>"]
    if env:
        facts = {"장치 (device)": env.get("device"), "torch": env.get("torch"), "python": env.get("python"),
                 "git commit": env.get("git_commit")}
        body.append("<p class='muted'>" + " · ".join(f"{k}: {_fmt(v)}" for k, v in facts.items() if v) + "</p>")
    body.append("<h2>실습 목록 (labs)</h2>")
    body.append("<table><thead><tr><th>실습 (lab)</th><th>제목 (title)</th><th>모드 (mode)</th>"
                "<th>대표 지표 (headline metric)</th><th>값 (value)</th><th>시간 (seconds)</th>"
                "<th>첫 그림 (first figure)</th></tr></thead><tbody>")
    for r, res in zip(rows, results):
        value = _fmt(r.value) if r.ok else "<span class='fail'>실패 (FAILED)</span>"
        figures = _figures(run_dir, r, res)
        preview = (f"<a href='{_href(_lab_page(r))}'><img class='thumb' alt='{html.escape(figures[0], quote=True)}' "
                   f"src='{_href((Path(r.folder) / figures[0]).as_posix())}'></a>" if figures else "")
        body.append(f"<tr><td><a href='{_href(_lab_page(r))}'>{html.escape(r.lab)}</a></td>"
                    f"<td>{html.escape(r.title)}</td><td>{_mode(res)}</td><td>{html.escape(r.metric or '')}</td>"
                    f"<td style='text-align:right'>{value}</td><td style='text-align:right'>{r.seconds:.1f}</td><td>{preview}</td></tr>")
    body.append("</tbody></table>")
    body.append("<p class='muted'>각 실습 페이지에 설정 (settings), 표 (tables), 그림 (figures)이 있습니다.</p>")
    return _page(f"esc-course run {run_dir.name}", body)


def _nav(rows: Sequence[RunSummary], i: int) -> str:
    links = ["<a href='index.html'>&#8593; 목록 (index)</a>"]
    if i > 0:
        links.append(f"<a href='{_href(_lab_page(rows[i - 1]))}'>&#8592; 이전 (previous): "
                     f"{html.escape(rows[i - 1].lab)}</a>")
    if i + 1 < len(rows):
        links.append(f"<a href='{_href(_lab_page(rows[i + 1]))}'>다음 (next): {html.escape(rows[i + 1].lab)} "
                     f"&#8594;</a>")
    return "<nav>" + "".join(links) + "</nav>"


def _files(run_dir: Path, r: RunSummary, notebooks: Path | None) -> list[str]:
    folder = Path(r.folder)
    files = [f"<a href='{_href((folder / name).as_posix())}'>{name}</a>" for name in ("results.json", "error.txt")
             if (run_dir / folder / name).is_file()]
    notebook = _notebook(r.lab, notebooks)
    if notebook is not None:
        try:
            rel = os.path.relpath(notebook.resolve(), run_dir.resolve())
        except ValueError:  # Windows: the run and the checkout on different drives
            rel = notebook.resolve().as_uri()
        files.append(f"노트북 (notebook): <a href='{_href(rel)}'>{html.escape(notebook.name)}</a>")
    return ["<h2>파일 (files)</h2>", "<p>" + " · ".join(files) + "</p>"] if files else []


def _anchor(kind: str, name: str) -> str:
    return html.escape(f"{kind}-{name}", quote=True)


def _contents(figures: list[str], tables: dict) -> list[str]:
    links = [f"<a href='#{_anchor('figure', Path(f).stem)}'>{html.escape(Path(f).stem)}</a>" for f in figures]
    links += [f"<a href='#{_anchor('table', name)}'>{html.escape(name)}</a>" for name in tables]
    return ["<p>목차 (contents): " + " · ".join(links) + "</p>"] if links else []


def _figure(folder: Path, f: str, caption: str) -> str:
    name = Path(f).stem
    return (f"<figure id='{_anchor('figure', name)}'><img src='{_href((folder / f).as_posix())}' "
            f"alt='{html.escape(caption or name, quote=True)}'><figcaption><b>{html.escape(name)}</b>"
            f"{': ' + html.escape(caption) if caption else ''}</figcaption></figure>")


def _lab(run_dir: Path, rows: Sequence[RunSummary], i: int, res: dict, notebooks: Path | None) -> str:
    """One lab's page: summary, files, contents, settings, figures (with captions), tables, every metric."""
    from esc_course.viz import table_html

    r = rows[i]
    captions, tables, figures = res.get("captions") or {}, res.get("tables") or {}, _figures(run_dir, r, res)
    body = [_nav(rows, i), f"<h1>{html.escape(r.lab)}: {html.escape(r.title)}</h1>"]
    summary = {"모드 (mode)": _mode(res), "대표 지표 (headline)": f"{r.metric or ''} = {_fmt(r.value)}",
               "시간 (seconds)": round(r.seconds, 1), "장치 (device)": (res.get("env") or {}).get("device")}
    body += ["<h2>요약 (summary)</h2>",
             table_html([{"항목 (item)": k, "값 (value)": v} for k, v in summary.items() if v is not None])]
    if not r.ok:
        body += ["<h2 class='fail'>실패 (failed)</h2>", f"<pre class='fail'>{html.escape(r.error)}</pre>"]
    body += _files(run_dir, r, notebooks) + _contents(figures, tables)
    if res.get("config"):
        body += ["<h2>설정 (settings)</h2>",
                 table_html([{"설정 (setting)": k, "값 (value)": v} for k, v in res["config"].items()])]
    if figures:
        body += ["<h2>그림 (figures)</h2>"] + [_figure(Path(r.folder), f, captions.get(Path(f).stem, ""))
                                              for f in figures]
    if tables:
        body.append("<h2>표 (tables)</h2>")
        for name, table in tables.items():
            body.append(f"<div id='{_anchor('table', name)}'>{table_html(table, caption=name)}</div>")
            if captions.get(name):
                body.append(f"<p class='muted'>{html.escape(captions[name])}</p>")
    if res.get("metrics"):
        body += ["<h2>지표 (metrics)</h2>",
                 f"<details><summary>모든 지표 보기 (all {len(res['metrics'])} metrics)</summary>",
                 table_html([{"지표 (metric)": k, "값 (value)": v} for k, v in res["metrics"].items()]),
                 "</details>"]
    body.append(_nav(rows, i))
    return _page(f"{r.lab}: {r.title}", body)


def write_index(run_dir: Path, rows: Sequence[RunSummary], notebooks: Path | None = None) -> Path:
    """Write ``run_dir/index.html``, one ``run_dir/lab-<name>.html`` per row, and ``run_dir/summary.json``.

    Each lab page is built from ``run_dir/<row.folder>/results.json`` and the PNGs beside it (linked, not copied).
    ``notebooks``: the folder of the weekly notebooks to link (default: the checkout's ``notebooks/``, if any).
    """
    run_dir = Path(run_dir)
    rows = list(rows)
    notebooks = default_notebooks() if notebooks is None else Path(notebooks)
    results = [_results(run_dir, r) for r in rows]
    for i, res in enumerate(results):
        write_text(run_dir / _lab_page(rows[i]), _lab(run_dir, rows, i, res, notebooks))
    path = run_dir / "index.html"
    write_text(path, _index(run_dir, rows, results))
    write_text(run_dir / "summary.json", json.dumps([r.__dict__ for r in rows], indent=2, default=str))
    return path


def rebuild(run_dir: Path, notebooks: Path | None = None) -> Path:
    """Rewrite a finished run's pages from its ``summary.json`` (e.g. after the report code changed)."""
    run_dir = Path(run_dir)
    summary = run_dir / "summary.json"
    if not summary.is_file():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} has no summary.json: name a folder `esc-course lab run` "
                                f"wrote (runs/<time>/ or its --out)")
    names = {f.name for f in fields(RunSummary)}
    rows = [RunSummary(**{k: v for k, v in d.items() if k in names}) for d in json.loads(summary.read_text())]
    return write_index(run_dir, rows, notebooks)


if __name__ == "__main__":  # python -m esc_course.report RUN_DIR
    if len(sys.argv) != 2:
        sys.exit("usage: python -m esc_course.report RUN_DIR")
    try:
        print(rebuild(Path(sys.argv[1])))
    except FileNotFoundError as err:
        sys.exit(f"error: {err}")
