"""`genzoo report`: the page's content from tiny runs, bad input, and a real browser rendering it.

The browser test renders pages in headless Chromium (Debian package `chromium`, installed by
.ci/run when missing) and reads back what the page's own script found after `load`: how many
<img> elements decoded. It skips, with the reason, only when no Chromium binary can be found.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from genzoo.cli import main

TINY_VAE = ["--data", "digits", "--batch-size", "32", "--set", "arch=mlp", "--set", "hidden=16",
            "--set", "latent_dim=2", "--set", "log_every=2", "--set", "sample_every=2",
            "--set", "n_samples=16", "--set", "progress=none"]
TINY_DCGAN = ["--data", "digits", "--batch-size", "32", "--set", "image_size=8", "--set", "ngf=8",
              "--set", "ndf=8", "--set", "nz=8", "--set", "n_samples=16", "--set", "log_every=1",
              "--set", "progress=none"]
TINY_POINTS = ["--data", "8gaussians", "--batch-size", "64", "--set", "arch=mlp",
               "--set", "decoder=gaussian", "--set", "hidden=16", "--set", "n_samples=64",
               "--set", "progress=none"]
MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/gif": b"GIF89a"}


def cli(*args) -> int:
    try:
        return main([str(a) for a in args])
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1


class Page(HTMLParser):
    """What the tests look at in a page: images, elements by id, table cells, all text."""

    def __init__(self, text: str):
        super().__init__()
        self.imgs: list[dict] = []
        self.ids: dict[str, dict] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if "id" in a:
            self.ids[a["id"]] = a
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self.tables[self._table][-1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._table is not None and self.tables[self._table] \
                and self.tables[self._table][-1]:
            self.tables[self._table][-1][-1] += data

    def image(self, alt: str) -> tuple[str, bytes]:
        """(mime type, bytes) of the image with this alt text."""
        src = next(i["src"] for i in self.imgs if i["alt"] == alt)
        head, data = src.split(",", 1)
        return head[5:].split(";")[0], base64.b64decode(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def read_page(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- tiny runs

@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A VAE (evaluated, with a picture in eval/), a DCGAN and a 2-D points VAE."""
    root = tmp_path_factory.mktemp("report")
    vae, gan, pts = root / "vae", root / "gan", root / "points"
    assert cli("train", "vae", "--out", vae, "--steps", 4, *TINY_VAE) == 0
    assert cli("eval", vae, "--metrics", "nll", "--n", 20, "--k", 2) == 0
    # stands in for the nn metric's panel: any eval/*.png is shown, labelled by its name
    shutil.copy(vae / "samples" / "step-000004.png", vae / "eval" / "nn-pixel.png")
    assert cli("train", "dcgan", "--out", gan, "--steps", 2, *TINY_DCGAN) == 0
    assert cli("train", "vae", "--out", pts, "--steps", 2, *TINY_POINTS) == 0
    return {"vae": vae, "gan": gan, "points": pts}


@pytest.fixture(scope="module")
def vae_page(runs) -> Path:
    assert cli("report", runs["vae"]) == 0
    return runs["vae"] / "report.html"


@pytest.fixture(scope="module")
def multi_page(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("multi") / "cmp.html"
    assert cli("report", runs["vae"], runs["gan"], runs["points"], "--out", out) == 0
    return out


# ----------------------------------------------------------------------------- one run

def test_single_run_page(vae_page, runs):
    page = read_page(vae_page)
    assert vae_page == runs["vae"] / "report.html"  # the default --out
    for img in page.imgs:  # self-contained: every picture is a data URI of what it claims
        mime, data = page.image(img["alt"])
        assert data.startswith(MAGIC[mime]), img["alt"]
    alts = [i["alt"] for i in page.imgs]
    assert alts == ["loss curves", "step-000002.png",
                    "step-000004.png", "vae interpolation (lerp)", "nn-pixel.png"]
    metric = page.tables["metric-table"]
    assert metric[0] == ["metric", "key", "value"]
    assert ["nll", "importance_samples", "2"] in metric
    assert any(r[:2] == ["nll", "nll_nats"] and float(r[2]) > 0 for r in metric)
    final = dict(page.tables["final-losses"][1:])
    assert set(final) == {"loss", "recon", "kl", "nelbo"}
    text = page.all_text
    assert "latent_dim: 2" in text and "step 2" in text and "step 4" in text
    assert "latest checkpoint step-000004 of 4 steps" in text


def test_loss_curves_and_interpolation_gif(vae_page):
    page = read_page(vae_page)
    with Image.open(io.BytesIO(page.image("loss curves")[1])) as im:
        assert im.format == "PNG" and im.size[0] > 600
    mime, data = page.image("vae interpolation (lerp)")
    with Image.open(io.BytesIO(data)) as im:
        assert mime == "image/gif" and im.is_animated
        assert im.n_frames == 2 * 16 - 2  # there and back, the ends shown once
        assert im.info["loop"] == 0
        assert im.size == (4 * 10 + 2, 4 * 10 + 2)  # 4 x 4 walks of 8x8 digits, 2px gaps


def test_interp_option_overrides_the_default(runs, tmp_path):
    out = tmp_path / "r.html"
    assert cli("report", runs["vae"], "--out", out, "--interp", "slerp") == 0
    assert "vae interpolation (slerp)" in [i["alt"] for i in read_page(out).imgs]


def test_points_run_has_no_interpolation_and_says_why(runs, tmp_path):
    out = tmp_path / "p.html"
    assert cli("report", runs["points"], "--out", out) == 0
    page = read_page(out)
    assert not any("interpolation" in i["alt"] for i in page.imgs)
    assert "points data, not images, so a walk through its latent space has no pictures" \
        in page.all_text
    assert "metric-table" not in page.tables and "No evaluation yet" in page.all_text


def test_bare_run_directory(runs, tmp_path):
    """A run that has logged nothing yet: every section says what is missing."""
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(runs["vae"] / "config.yaml", bare / "config.yaml")
    assert cli("report", bare) == 0
    page = read_page(bare / "report.html")
    assert page.imgs == []
    text = page.all_text
    for sentence in ("No evaluation yet", "logged nothing yet", "no sample pictures yet",
                     "no complete checkpoint yet, so no model to walk through"):
        assert sentence in text


# ----------------------------------------------------------------------------- several runs

def test_several_runs_comparison(multi_page):
    page = read_page(multi_page)
    head, *rows = page.tables["metric-table"]
    assert head[:6] == ["run", "model", "data", "step", "nll.nll_nats", "nll.nll_bits_per_dim"]
    assert {"final loss", "final D/loss", "final G/loss"} <= set(head)
    assert [r[:4] for r in rows] == [["vae", "vae", "digits", "4/4"],
                                     ["gan", "gan", "digits", "2/2"],
                                     ["points", "vae", "8gaussians", "2/2"]]
    assert rows[1][4] == "n/a" and float(rows[0][4]) > 0  # only the VAE was evaluated
    diff = {r[0]: r[1:] for r in page.tables["config-diff"][1:]}
    assert diff["model.name"] == ["vae", "gan", "vae"]
    assert diff["data.name"] == ["digits", "digits", "8gaussians"]
    alts = [i["alt"] for i in page.imgs]
    assert alts.count("loss curves") == 1
    assert "vae interpolation (lerp)" in alts and "gan interpolation (slerp)" in alts
    # final samples side by side, then each run's samples over training
    assert alts.count("step-000004.png") == 2 and alts.count("step-000002.png") == 2 + 3
    assert "points: this run models points data, not images" in page.all_text


def test_compare_writes_its_html_through_the_page_code(runs, tmp_path):
    from genzoo.report.compare import compare_runs

    result = compare_runs([str(runs["vae"]), str(runs["gan"])], out=tmp_path / "c")
    page = read_page(Path(result["paths"]["html"]))
    assert "genzoo-check" in page.ids and "metric-table" in page.tables
    assert [r[0] for r in page.tables["metric-table"][1:]] == ["vae", "gan"]


# ----------------------------------------------------------------------------- bad input

def run_error(capsys, *args) -> str:
    rc = cli(*args)
    _, err = capsys.readouterr()
    assert rc == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("genzoo: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("make, match", [
    (lambda r, t: [t / "nope"], "does not exist"),
    (lambda r, t: [r["vae"] / "config.yaml"], "is a file, not a run directory"),
    (lambda r, t: [t], "has no config.yaml"),
    (lambda r, t: [r["vae"], "--out", t / "missing" / "r.html"], "does not exist"),
    (lambda r, t: [r["vae"], "--out", t / "r.txt"], "must be an .html file"),
    (lambda r, t: [r["vae"], "--out", t / "d.html"], "is a directory"),
    (lambda r, t: [r["vae"], r["gan"]], "several runs need --out"),
    (lambda r, t: [r["vae"], r["vae"], "--out", t / "r.html"], "given twice"),
    (lambda r, t: [r["vae"], "--out", t / "r.html", "--interp", "cubic"], "choose lerp or slerp"),
])
def test_bad_input_is_one_line(runs, tmp_path, capsys, make, match):
    (tmp_path / "d.html").mkdir()
    before = sorted(tmp_path.iterdir())
    assert match in run_error(capsys, "report", *make(runs, tmp_path))
    assert sorted(tmp_path.iterdir()) == before


# ----------------------------------------------------------------------------- in a browser

def chromium() -> str | None:
    for name in (os.environ.get("GENZOO_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def render(page: Path, profile: Path) -> Page:
    """The DOM of the page after its scripts ran, as headless Chromium has it."""
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium found (looked for $GENZOO_CHROMIUM, chromium, chromium-browser, "
                    "google-chrome); .ci/run installs the Debian package `chromium`")
    proc = subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox",
                           "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                           "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Page(proc.stdout)


@pytest.mark.parametrize("which", ["single", "several", "compare"])
def test_page_in_headless_chromium(which, vae_page, multi_page, runs, tmp_path):
    if which == "compare":
        from genzoo.report.compare import compare_runs

        path = Path(compare_runs([str(runs["vae"]), str(runs["gan"])],
                                 out=tmp_path / "c")["paths"]["html"])
    else:
        path = vae_page if which == "single" else multi_page
    n_img = len(read_page(path).imgs)
    dom = render(path, tmp_path / "profile")
    check = dom.ids["genzoo-check"]
    assert check.get("data-images-total") == str(n_img), "the page's load check did not run"
    assert n_img >= 2 and check["data-images-loaded"] == str(n_img), check.get("data-broken")
    assert len(dom.tables["metric-table"]) >= 2  # a header and at least one row, rendered
    if which != "compare":
        assert "nll_nats" in " ".join(sum(dom.tables["metric-table"], []))


def test_browser_check_catches_a_broken_image(tmp_path):
    """The check is not vacuous: an image that cannot decode is counted as not loaded."""
    from genzoo.report import page as P

    path = tmp_path / "broken.html"
    path.write_text(P.document("t", ['<img src="data:image/png;base64,AAAA" alt="bad">',
                                     P.table(["a"], [["1"]], id="metric-table")]))
    check = render(path, tmp_path / "profile").ids["genzoo-check"]
    assert (check["data-images-total"], check["data-images-loaded"]) == ("1", "0")
    assert check["data-broken"] == "bad" and "hidden" not in check
