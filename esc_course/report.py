"""The run index: one HTML page with every lab's headline metrics and figures, and the terminal summary."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
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


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def write_index(run_dir: Path, rows: Sequence[RunSummary]) -> Path:
    """Write ``run_dir/index.html`` (figures linked, not copied) and ``run_dir/summary.json``."""
    run_dir = Path(run_dir)
    parts = [
        "<!doctype html><meta charset='utf-8'><title>esc-course run</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}img{max-width:100%;border:1px solid #eee;margin:4px}"
        ".fail{color:#b00}</style>",
        f"<h1>esc-course run {html.escape(run_dir.name)}</h1>",
        "<table><tr><th>lab</th><th>title</th><th>headline metric</th><th>value</th><th>seconds</th></tr>",
    ]
    for r in rows:
        value = _fmt(r.value) if r.ok else "<span class='fail'>FAILED</span>"
        parts.append(f"<tr><td><a href='#{r.lab}'>{r.lab}</a></td><td>{html.escape(r.title)}</td>"
                     f"<td>{html.escape(r.metric or '')}</td><td>{value}</td><td>{r.seconds:.1f}</td></tr>")
    parts.append("</table>")
    for r in rows:
        parts.append(f"<h2 id='{r.lab}'>{r.lab}: {html.escape(r.title)}</h2>")
        if not r.ok:
            parts.append(f"<pre class='fail'>{html.escape(r.error)}</pre>")
            continue
        parts.append("<p>" + ", ".join(f"{html.escape(k)} = {_fmt(v)}" for k, v in r.metrics.items()) + "</p>")
        parts.append(f"<p><a href='{r.folder}/results.json'>results.json</a></p>")
        parts += [f"<img src='{r.folder}/{html.escape(f)}' alt='{html.escape(f)}'>" for f in r.figures]
    path = run_dir / "index.html"
    write_text(path, "\n".join(parts))
    write_text(run_dir / "summary.json", json.dumps([r.__dict__ for r in rows], indent=2, default=str))
    return path
