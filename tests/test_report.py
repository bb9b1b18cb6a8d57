"""The run report: built from a run folder on disk, every link resolves, and headless Chromium shows it whole."""

import json
import struct
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from esc_course.report import RunSummary, rebuild, write_index

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.headless import find_chromium, open_page  # noqa: E402

SHOTS = Path("/tmp/esc-report-shots")  # the screenshots, to look at after a run


def _png(path: Path, title: str) -> None:
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(1, 1, size=(4, 3))
    ax.plot([0, 1, 2], [2, 1, 3], label="loss")
    ax.set_title(title)
    ax.legend()
    fig.savefig(path, dpi=60)


def make_run(root: Path) -> tuple[Path, list[RunSummary], Path]:
    """A run folder as `esc-course lab run all` leaves it: two labs that finished (quick and full) and one that
    failed, plus a notebooks folder holding the first lab's notebook."""
    run = root / "20260101-120000"
    for lab, quick in (("xor", True), ("cnn", False)):
        folder = run / lab
        folder.mkdir(parents=True)
        _png(folder / "loss_curves.png", f"{lab} loss")
        _png(folder / "boundaries.png", f"{lab} boundaries")
        results = {
            "lab": lab, "config": {"lr": 0.5, "epochs": 30, "quick": quick, "seed": 0},
            "metrics": {"accuracy": 0.975, "final_loss": 0.0123},
            "tables": {"models": [{"model": "perceptron", "accuracy": 0.5}, {"model": "mlp <2-2-1>", "accuracy": 1.0}]},
            "captions": {"loss_curves": "Training loss per epoch; the MLP reaches zero, the perceptron stays at log 2.",
                         "models": "Accuracy on the four XOR points."},
            "env": {"device": "cpu", "torch": "2.x", "python": "3.11", "git_commit": "abc123"},
            "figures": ["loss_curves.png", "boundaries.png"], "seconds": 1.5,
        }
        (folder / "results.json").write_text(json.dumps(results))
    (run / "broken").mkdir()
    (run / "broken" / "error.txt").write_text("Traceback ...\nModuleNotFoundError: labs.no_such_module")
    rows = [RunSummary("xor", "Week 1: XOR", "accuracy", 0.975, 1.5, "xor", metrics={"accuracy": 0.975},
                       figures=["loss_curves.png", "boundaries.png"]),
            RunSummary("cnn", "Week 3: CNN", "accuracy", 0.975, 2.5, "cnn"),
            RunSummary("broken", "x", None, None, 0.1, "broken", ok=False,
                       error="ModuleNotFoundError: No module named 'labs.no_such_module'")]
    notebooks = root / "notebooks"
    notebooks.mkdir()
    (notebooks / "week01_xor.ipynb").write_text("{}")
    return run, rows, notebooks


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.text, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.refs.append(attrs[key])

    def handle_data(self, data):
        self.text.append(data)


def parse(page: Path) -> tuple[list[str], str]:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.refs, " ".join(parser.text)


def page_ids(page: Path) -> set[str]:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.ids


def test_pages_are_built_from_the_run_folder_and_every_link_resolves(tmp_path):
    run, rows, notebooks = make_run(tmp_path)
    index = write_index(run, rows, notebooks=notebooks)
    assert index == run / "index.html"
    pages = sorted(p.name for p in run.glob("*.html"))
    assert pages == ["index.html", "lab-broken.html", "lab-cnn.html", "lab-xor.html"]
    for page in run.glob("*.html"):
        refs, _ = parse(page)
        for ref in refs:
            if ref.startswith("#"):  # the contents line: an element of this page
                assert ref[1:] in page_ids(page), f"{page.name} links {ref}, which is not on the page"
            else:
                assert (page.parent / unquote(ref)).exists(), f"{page.name} links {ref}, which is not there"
    refs, text = parse(index)
    assert {"lab-xor.html", "lab-cnn.html", "lab-broken.html"} <= set(refs)
    assert "quick" in text and "full" in text and "FAILED" in text  # every lab's mode, the failure shown
    assert "실습 목록 (labs)" in text and "대표 지표 (headline metric)" in text

    refs, text = parse(run / "lab-xor.html")
    html = (run / "lab-xor.html").read_text()
    assert "xor/results.json" in refs and "xor/loss_curves.png" in refs and "xor/boundaries.png" in refs
    assert any(r.endswith("notebooks/week01_xor.ipynb") for r in refs)
    assert "index.html" in refs and "lab-cnn.html" in refs  # up and next
    assert {"#figure-loss_curves", "#figure-boundaries", "#table-models"} <= set(refs)  # contents
    assert html.count("<table") >= 4  # summary, settings, metrics, the lab's table
    assert "<th>model</th>" in html and "mlp &lt;2-2-1&gt;" in html  # a table as a table, values escaped
    assert "Training loss per epoch" in text and "Accuracy on the four XOR points." in text  # captions
    for heading in ("설정 (settings)", "표 (tables)", "그림 (figures)", "지표 (metrics)"):
        assert heading in text

    refs, text = parse(run / "lab-broken.html")
    assert "broken/error.txt" in refs and "no_such_module" in text and "lab-cnn.html" in refs  # previous
    assert not any(r.endswith(".png") for r in refs)


def test_rebuild_from_summary_json_and_a_clear_error_without_it(tmp_path):
    run, rows, notebooks = make_run(tmp_path)
    write_index(run, rows, notebooks=notebooks)
    before = {p.name: p.read_text() for p in run.glob("*.html")}
    for p in run.glob("*.html"):
        p.unlink()
    rebuild(run, notebooks=notebooks)
    assert {p.name: p.read_text() for p in run.glob("*.html")} == before
    with pytest.raises(FileNotFoundError, match="run_dir=.*has no summary.json"):
        rebuild(tmp_path / "nowhere")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on PATH: the report's browser test needs it "
                    "(Debian: apt-get install chromium; .ci/run installs it where apt can)")
def test_headless_chromium_loads_the_index_and_a_lab_page_with_every_resource(tmp_path):
    run, rows, notebooks = make_run(tmp_path)
    write_index(run, rows, notebooks=notebooks)
    SHOTS.mkdir(exist_ok=True)
    index = open_page(run.joinpath("index.html").as_uri(), screenshot=SHOTS / "index.png")
    lab = open_page(run.joinpath("lab-xor.html").as_uri(), screenshot=SHOTS / "lab-xor.png")
    for page in (index, lab):
        assert page.failed == [], f"{page.url}: failed requests {page.failed}"
        assert page.images and all(i["ok"] for i in page.images), f"{page.url}: images not decoded {page.images}"
        assert page.seconds < 15
    assert len(index.images) == 2 and index.tables == 1  # one first-figure preview per finished lab
    assert "실행 보고서 (run report)" in index.headings[0]
    assert [urlparse(u).path.rsplit("/", 1)[-1] for u in index.links if "lab-" in u] == \
        ["lab-xor.html", "lab-xor.html", "lab-cnn.html", "lab-cnn.html", "lab-broken.html"]
    assert {Path(urlparse(i["src"]).path).name for i in lab.images} == {"loss_curves.png", "boundaries.png"}
    assert all(i["width"] > 100 and i["height"] > 100 for i in lab.images)
    requested = {Path(urlparse(u).path).name for u in lab.requested}
    assert {"lab-xor.html", "loss_curves.png", "boundaries.png"} <= requested
    assert lab.tables >= 4 and "그림 (figures)" in lab.headings
    width, height = _png_size(SHOTS / "lab-xor.png")
    assert width == 1200 and height > 900  # the whole page, not only the first screen
    assert _png_size(SHOTS / "index.png")[0] == 1200


def test_a_missing_image_is_reported_by_the_browser_check(tmp_path):
    """The browser check can fail: a page whose figure is gone reports it."""
    if find_chromium() is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install chromium)")
    page = tmp_path / "p.html"
    page.write_text("<!doctype html><title>t</title><img src='gone.png'>")
    report = open_page(page.as_uri())
    assert report.failed and "ERR_FILE_NOT_FOUND" in report.failed[0]
    assert report.images and not report.images[0]["ok"]
