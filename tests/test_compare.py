"""`genzoo compare` on tiny VAEs: equal seeds and budgets, every seed reported, runs reused."""

from __future__ import annotations

import argparse
import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.errors import GenzooError
from genzoo.report.compare import (
    add_parser,
    cmd_compare,
    compare_runs,
    parse_config_spec,
    run_comparison,
)

A = "vae:arch=mlp,hidden=8,latent_dim=2"
B = "vae:arch=mlp,hidden=8,latent_dim=3"
DIRS = {A: "vae_arch=mlp_hidden=8_latent_dim=2", B: "vae_arch=mlp_hidden=8_latent_dim=3"}
COMMON = dict(data="digits", steps=2, sets=["log_every=1", "batch_size=32"], metrics=["nll"],
              n_eval=50, options={"k": 2})


def compare(out: Path, specs=(A, B), seeds=(0, 1), **kw) -> dict:
    return run_comparison(list(specs), out=out, seeds=list(seeds), **{**COMMON, **kw})


@pytest.fixture(scope="module")
def cmp(tmp_path_factory) -> tuple[Path, dict]:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cmp") / "out"
    return out, compare(out)


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def html_images(path: Path) -> list[str]:
    p = Images()
    p.feed(path.read_text())
    p.close()
    return p.srcs


def table_rows(md: str) -> list[list[str]]:
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]


# ----------------------------------------------------------------------------- the comparison

def test_parse_config_spec():
    assert parse_config_spec(" vae ") == ("vae", "vae", [])
    label, preset, over = parse_config_spec("vae:hidden=16,16,latent_dim=2,lr=1e-3")
    assert (label, preset) == ("vae:hidden=16,16,latent_dim=2,lr=1e-3", "vae")
    assert over == [("hidden", "16,16"), ("latent_dim", "2"), ("lr", "1e-3")]


def test_one_run_directory_per_config_and_seed(cmp):
    out, result = cmp
    for spec in (A, B):
        for seed in (0, 1):
            run = out / "runs" / DIRS[spec] / f"seed-{seed}"
            assert (run / "checkpoints" / "step-000002" / "COMPLETE").is_file()
            assert (run / "eval" / "metrics.json").is_file()
    assert [r["label"] for r in result["rows"]] == [A, B]
    assert [[run["seed"] for run in r["runs"]] for r in result["rows"]] == [[0, 1], [0, 1]]


def test_markdown_table(cmp):
    out, result = cmp
    md = (out / "compare.md").read_text()
    assert md == result["table"]
    head, sep, *rows = table_rows(md)
    assert head == ["config", "seeds", "diverged", "nll.nll_nats", "nll.nll_bits_per_dim",
                    "wall s", "images/s"]
    assert set(sep) == {"---"}
    assert [r[0] for r in rows] == [A, B]
    for r in rows:
        assert r[1:3] == ["2", "0"]
        assert all(" ± " in c for c in r[3:])


def test_json_holds_every_seed_and_correct_stats(cmp):
    out, _ = cmp
    doc = json.loads((out / "compare.json").read_text())
    assert doc["seeds"] == [0, 1] and doc["steps"] == 2 and doc["data"] == "digits"
    for row in doc["rows"]:
        nats = []
        for run in row["runs"]:
            saved = json.loads((Path(run["run_dir"]) / "eval" / "metrics.json").read_text())
            assert run["metrics"] == saved["metrics"]
            assert run["metrics"]["nll"]["importance_samples"] == 2
            assert run["metrics"]["nll"]["n"] == 50
            assert run["status"] == "ok" and run["wall_s"] > 0 and run["images_per_s"] > 0
            last = (Path(run["run_dir"]) / "metrics.jsonl").read_text().splitlines()[-1]
            assert run["images_per_s"] == json.loads(last)["images_per_s"]
            nats.append(run["metrics"]["nll"]["nll_nats"])
        s = row["summary"]["metrics"]["nll.nll_nats"]
        assert s["n"] == 2
        assert s["mean"] == pytest.approx(np.mean(nats), rel=1e-12)
        assert s["std"] == pytest.approx(np.std(nats, ddof=1), rel=1e-12)
        assert row["config"]["model.hidden"] == [8] and "train.seed" not in row["config"]


def test_html_page_is_self_contained(cmp):
    out, result = cmp
    page = (out / "compare.html").read_text()
    srcs = html_images(out / "compare.html")
    assert len(srcs) == 2
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert A in page and B in page and "nll.nll_nats" in page
    assert "±" in page and "batch_size=32" in page  # the table and the settings


def test_grids_png(cmp):
    out, result = cmp
    with Image.open(out / "grids.png") as im:
        im.load()
        assert im.format == "PNG" and im.size[0] > im.size[1]
    assert sorted(p.name for p in (out / "samples").iterdir()) == sorted(
        f"{d}.png" for d in DIRS.values())


def test_pictures_use_fixed_noise_and_first_seed(cmp):
    """The picture of a row is the first seed's model sampled with generator seed 0."""
    from genzoo.train.rundir import load_run
    from genzoo.viz.grid import image_grid

    out, _ = cmp
    model, _, _ = load_run(out / "runs" / DIRS[A] / "seed-0", ema=True)
    with torch.no_grad():
        x = model.sample(64, generator=torch.Generator().manual_seed(0))
    grid = (image_grid(x).clamp(0, 1) * 255).round().to(torch.uint8)  # (3, H, W)
    with Image.open(out / "samples" / f"{DIRS[A]}.png") as im:
        saved = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(saved, grid)


def test_second_call_reuses_finished_runs(cmp):
    out, first = cmp
    runs = sorted((out / "runs").rglob("metrics.jsonl"))
    assert len(runs) == 4
    before = {p: p.read_bytes() for p in runs}
    ckpts = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("model.safetensors")}
    again = compare(out)
    assert {p: p.read_bytes() for p in runs} == before
    assert {p: p.stat().st_mtime_ns for p in ckpts} == ckpts
    assert again["table"] == first["table"]


def test_changed_config_in_existing_run_is_refused(cmp):
    out, _ = cmp
    with pytest.raises(GenzooError, match="another config .*train.steps: 2 there, 3 now"):
        compare(out, steps=3)


@pytest.mark.parametrize("specs, match", [
    ([A, "vae:latent_dimm=2"], "config 'vae:latent_dimm=2': unknown setting 'latent_dimm'"),
    ([A, "nosuchmodel"], "unknown model 'nosuchmodel'"),
    ([A, "vae:arch"], "'arch' is not key=value"),
    ([A, "vae:"], "nothing after ':'"),
    ([A, ":beta=2"], "names no preset"),
    ([A, "vae:arch=mlp,,beta=2"], "'' is not key=value"),
    ([A, "vae:seed=3"], "use --seeds"),
    ([A, "vae:batch_size=100000"], "config 'vae:batch_size=100000': .*batch"),
    ([A, A], "given twice"),
    ([], "no configurations"),
])
def test_bad_config_fails_before_any_run(tmp_path, specs, match):
    out = tmp_path / "out"
    with pytest.raises(GenzooError, match=match):
        compare(out, specs=specs)
    assert not out.exists()


@pytest.mark.parametrize("kw, match", [
    (dict(seeds=[]), "at least one seed"),
    (dict(seeds=[0, 0]), "each once"),
    (dict(metrics=["nope"]), "unknown metric 'nope'"),
    (dict(sets=["steps=5"]), "use --steps"),
    (dict(sets=["lr"]), "not key=value"),
    (dict(data="nosuchdata"), "unknown dataset 'nosuchdata'"),
])
def test_bad_options_fail_before_any_run(tmp_path, kw, match):
    out = tmp_path / "out"
    with pytest.raises(GenzooError, match=match):
        compare(out, **kw)
    assert not out.exists()


def test_diverged_run_is_a_row_not_an_abort(tmp_path):
    bad = "vae:arch=mlp,hidden=8,latent_dim=2,lr=1e30,batch_size=16"
    out = tmp_path / "out"
    result = compare(out, specs=[A, bad], seeds=[0])
    good_row, bad_row = result["rows"]
    assert bad_row["summary"]["diverged"] == 1 and bad_row["summary"]["metrics"] == {}
    run = bad_row["runs"][0]
    assert run["status"] == "diverged" and run["step"] == 2 and run["metrics"] == {}
    assert run["message"].startswith("diverged at step 2: loss term")
    assert not (Path(run["run_dir"]) / "eval").exists()  # diverged runs are not evaluated
    assert bad_row["config"]["train.batch_size"] == 16  # the config's own setting wins over --set
    assert good_row["config"]["train.batch_size"] == 32
    rows = table_rows(result["table"])
    assert rows[2][:3] == [A, "1", "0"] and rows[3][:3] == [bad, "1", "1"]
    assert rows[3][3] == "n/a"
    assert "diverged at step 2" in result["table"]
    assert len(html_images(out / "compare.html")) == 1  # no picture of a diverged model
    assert "diverged, no samples" in (out / "compare.html").read_text()
    assert (out / "grids.png").is_file()


def test_unfinished_run_is_resumed(tmp_path):
    out = tmp_path / "out"
    compare(out, specs=[A], seeds=[0], sets=["log_every=1", "batch_size=32",
                                              "checkpoint_every=1"])
    run = out / "runs" / DIRS[A] / "seed-0"
    steps_logged = (run / "metrics.jsonl").read_text()
    import shutil

    shutil.rmtree(run / "checkpoints" / "step-000002")  # as if stopped after step 1
    result = compare(out, specs=[A], seeds=[0], sets=["log_every=1", "batch_size=32",
                                                       "checkpoint_every=1"])
    assert (run / "checkpoints" / "step-000002" / "COMPLETE").is_file()
    assert [json.loads(s)["step"] for s in (run / "metrics.jsonl").read_text().splitlines()] \
        == [json.loads(s)["step"] for s in steps_logged.splitlines()] == [1, 2]
    assert result["rows"][0]["runs"][0]["status"] == "ok"


# ----------------------------------------------------------------------------- existing runs

def test_compare_runs_groups_seeds(cmp, tmp_path):
    out, first = cmp
    dirs = [out / "runs" / DIRS[s] / f"seed-{k}" for s in (B, A) for k in (1, 0)]
    result = compare_runs([str(d) for d in dirs], out=tmp_path / "again", metrics=["nll"],
                          n_eval=50, options={"k": 2})
    rows = result["rows"]
    assert [r["label"] for r in rows] == [DIRS[B], DIRS[A]]
    assert [[run["seed"] for run in r["runs"]] for r in rows] == [[0, 1], [0, 1]]
    by_label = {r["label"]: r for r in first["rows"]}
    for r in rows:
        want = by_label[A if r["label"] == DIRS[A] else B]["summary"]["metrics"]
        assert r["summary"]["metrics"] == want  # the same evaluation, the same numbers
    assert len(html_images(tmp_path / "again" / "compare.html")) == 2


def test_compare_runs_bad_input(cmp, tmp_path):
    out, _ = cmp
    with pytest.raises(GenzooError, match="does not exist"):
        compare_runs([str(tmp_path / "nope")], out=tmp_path / "o")
    with pytest.raises(GenzooError, match="no run directories"):
        compare_runs([], out=tmp_path / "o")
    run = str(out / "runs" / DIRS[A] / "seed-0")
    with pytest.raises(GenzooError, match="given twice"):
        compare_runs([run, run], out=tmp_path / "o")
    with pytest.raises(GenzooError, match="unknown metric"):
        compare_runs([run], out=tmp_path / "o", metrics=["nope"])
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- command line

def parse(*argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="genzoo")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args([str(a) for a in argv])


def test_cli_compare_runs(cmp, tmp_path, capsys):
    out, _ = cmp
    runs = [out / "runs" / DIRS[A] / f"seed-{k}" for k in (0, 1)]
    cmd_compare(parse("compare", "--runs", *runs, "--out", tmp_path / "c", "--metrics", "nll",
                      "--n", 20, "--k", 2))
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("| config | seeds | diverged | nll.nll_nats")
    assert f"| {DIRS[A]} | 2 | 0 |" in text
    for name in ("compare.md", "compare.html", "compare.json", "grids.png"):
        assert str(tmp_path / "c" / name) in text
    doc = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert doc["command"].startswith("genzoo compare --runs ")


def test_cli_compare_configs(tmp_path, capsys):
    cmd_compare(parse("compare", A, "--data", "digits", "--out", tmp_path / "c", "--steps", 1,
                      "--seeds", "3", "--set", "batch_size=32"))
    text = capsys.readouterr().out
    assert f"| {A} | 1 | 0 |" in text
    assert (tmp_path / "c" / "runs" / DIRS[A] / "seed-3" / "checkpoints" / "step-000001").is_dir()
    doc = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert doc["command"] == (f"genzoo compare {A} --steps 1 --seeds 3 --data digits "
                              f"--set batch_size=32 --out {tmp_path / 'c'} --k 500")


@pytest.mark.parametrize("argv, match", [
    (["--runs", "x", "--steps", "3"], "--runs compares existing runs"),
    ([A, "--runs", "x"], "--runs compares existing runs"),
    ([A, "--seeds", "0,a"], "comma-separated integers"),
    ([], "no configurations"),
])
def test_cli_bad_input(tmp_path, argv, match):
    with pytest.raises(GenzooError, match=match):
        cmd_compare(parse("compare", *argv, "--out", tmp_path / "c"))
    assert not (tmp_path / "c").exists()


def test_integer_results_are_columns_and_protocol_facts_are_not():
    from genzoo.report.compare import _summary

    runs = [{"status": "ok", "wall_s": 1.0, "images_per_s": 10.0,
             "metrics": {"modes": {"modes_covered": c, "modes_total": 8, "n": 2500,
                                   "high_quality_fraction": q, "units": "x"}}}
            for c, q in ((8, 0.9), (6, 0.7))]
    m = _summary(runs)["metrics"]
    assert set(m) == {"modes.modes_covered", "modes.high_quality_fraction"}
    assert m["modes.modes_covered"]["mean"] == 7.0
