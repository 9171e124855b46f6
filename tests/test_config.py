"""genzoo.config: value parsing, key resolution, presets, config files and validation."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal, Optional

import pytest
import yaml

from genzoo.config import (
    RunConfig,
    TrainConfig,
    build_config,
    coerce,
    config_from_dict,
    parse_set,
)
from genzoo.data import DataConfig
from genzoo.errors import GenzooError
from genzoo.models import get_model_class

# ----------------------------------------------------------------------------- coerce: ints


@pytest.mark.parametrize("text", ["1000", "1_000", "1e3", "1E3", "1000.0"])
def test_coerce_int_accepts_common_spellings(text):
    v = coerce(text, int, "steps")
    assert v == 1000 and type(v) is int


def test_coerce_int_passes_yaml_ints_and_whole_floats():
    assert coerce(7, int, "steps") == 7
    v = coerce(3.0, int, "steps")
    assert v == 3 and type(v) is int


@pytest.mark.parametrize("value", ["abc", "1.5", "", "inf", "nan", True, 2.5, None, [1]])
def test_coerce_int_rejects(value):
    with pytest.raises(GenzooError) as e:
        coerce(value, int, "steps")
    msg = str(e.value)
    assert msg.startswith(f"steps={value!r} is not valid")
    assert "integer" in msg


# ----------------------------------------------------------------------------- coerce: floats


@pytest.mark.parametrize("value, expected", [
    ("1e-4", 1e-4), ("0.5", 0.5), ("-2", -2.0), ("3", 3.0), (3, 3.0), (1e-3, 1e-3),
])
def test_coerce_float(value, expected):
    v = coerce(value, float, "lr")
    assert v == expected and type(v) is float


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", float("nan"), float("inf")])
def test_coerce_float_rejects_non_finite(value):
    with pytest.raises(GenzooError, match="finite"):
        coerce(value, float, "lr")


@pytest.mark.parametrize("value", ["abc", "", True, None, "1e-4x"])
def test_coerce_float_rejects_non_numbers(value):
    with pytest.raises(GenzooError, match=r"^lr=.* is not valid: expected a number"):
        coerce(value, float, "lr")


# ----------------------------------------------------------------------------- coerce: bools


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("false", False), ("yes", True), ("no", False), ("on", True),
    ("off", False), ("1", True), ("0", False), ("TRUE", True), ("Off", False),
    (True, True), (False, False),
])
def test_coerce_bool(text, expected):
    assert coerce(text, bool, "deterministic") is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", "y", None])
def test_coerce_bool_rejects(value):
    with pytest.raises(GenzooError, match="expected true or false"):
        coerce(value, bool, "deterministic")


# ----------------------------------------------------------------------------- coerce: others


def test_coerce_literal():
    tp = Literal["mlp", "conv"]
    assert coerce("mlp", tp, "arch") == "mlp"
    assert coerce("conv", tp, "arch") == "conv"
    with pytest.raises(GenzooError) as e:
        coerce("rnn", tp, "arch")
    assert str(e.value) == "arch='rnn' is not valid: choose one of mlp, conv"
    with pytest.raises(GenzooError):
        coerce("MLP", tp, "arch")  # choices are case-sensitive


def test_coerce_literal_of_ints_accepts_text():
    tp = Literal[1, 3]
    assert coerce("3", tp, "c") == 3 and coerce(1, tp, "c") == 1
    with pytest.raises(GenzooError, match="choose one of 1, 3"):
        coerce("2", tp, "c")


@pytest.mark.parametrize("text", ["none", "null", "None", "NULL", None])
def test_coerce_optional_none(text):
    assert coerce(text, Optional[int], "limit") is None  # noqa: UP045 (typing.Union form)
    assert coerce(text, int | None, "limit") is None
    assert coerce(text, str | None, "root") is None


def test_coerce_optional_value_and_rejection():
    assert coerce("12", int | None, "limit") == 12
    assert coerce("data/x", str | None, "root") == "data/x"
    with pytest.raises(GenzooError) as e:
        coerce("abc", int | None, "limit")
    assert "integer" in str(e.value) and "none" in str(e.value)
    with pytest.raises(GenzooError):
        coerce("none", int, "steps")  # None only where the type allows it


@pytest.mark.parametrize("value", ["400,400", "[400, 400]", "(400,400)", " 400 , 400 ",
                                   [400, 400], (400, 400), ["400", "400"]])
def test_coerce_int_tuple(value):
    v = coerce(value, tuple[int, ...], "hidden")
    assert v == (400, 400) and type(v) is tuple


def test_coerce_int_tuple_single_and_bad_items():
    assert coerce("64", tuple[int, ...], "hidden") == (64,)
    with pytest.raises(GenzooError, match="hidden"):
        coerce("400,abc", tuple[int, ...], "hidden")
    with pytest.raises(GenzooError):
        coerce(5, tuple[int, ...], "hidden")  # a bare number is not a list


def test_coerce_str():
    assert coerce("mnist5k", str, "name") == "mnist5k"
    assert coerce(8, str, "name") == "8"  # YAML reads an all-digit name as int
    with pytest.raises(GenzooError):
        coerce(True, str, "name")
    with pytest.raises(GenzooError):
        coerce(None, str, "name")


# ----------------------------------------------------------------------------- parse_set


def test_parse_set():
    assert parse_set(["lr=1e-4", " steps = 10 ", "device=cuda:0", "a=b=c", "root="]) == [
        ("lr", "1e-4"), ("steps", "10"), ("device", "cuda:0"), ("a", "b=c"), ("root", "")]


def test_parse_set_rejects_missing_equals_and_empty_key():
    with pytest.raises(GenzooError, match="not key=value"):
        parse_set(["lr"])
    with pytest.raises(GenzooError, match="empty key"):
        parse_set(["=3"])


# ----------------------------------------------------------------------------- key resolution


def test_defaults_without_overrides_are_the_vae_preset():
    cfg = build_config("vae")
    assert cfg.model == "vae"
    assert cfg.data.name == "mnist5k" and cfg.data.binarize == "dynamic"
    assert cfg.train.lr == 1e-3 and cfg.train.steps == 3000 and cfg.train.batch_size == 128
    assert cfg.train.beta1 == 0.9
    assert cfg.model_cfg.arch == "conv" and cfg.model_cfg.latent_dim == 20
    # fields the preset does not mention keep their dataclass defaults
    assert cfg.train.seed == TrainConfig().seed and cfg.data.limit is None


def test_dcgan_preset():
    cfg = build_config("dcgan")
    assert cfg.model == "gan" and cfg.model_cfg.arch == "dcgan"
    assert (cfg.data.name, cfg.data.image_size, cfg.data.resize) == ("mnist5k", 32, "pad")
    assert cfg.train.lr == 2e-4 and cfg.train.beta1 == 0.5
    assert (cfg.model_cfg.nz, cfg.model_cfg.loss) == (100, "nsgan")


def test_plain_keys_resolve_to_their_section():
    cfg = build_config("vae", overrides=[("lr", "1e-4"), ("latent_dim", "2"),
                                         ("image_size", "16"), ("hidden", "32,16")])
    assert cfg.train.lr == 1e-4
    assert cfg.model_cfg.latent_dim == 2
    assert cfg.data.image_size == 16
    assert cfg.model_cfg.hidden == (32, 16)
    # nothing leaked into another section as a stray attribute
    assert not hasattr(cfg.train, "latent_dim") and not hasattr(cfg.model_cfg, "lr")


def test_dotted_keys():
    cfg = build_config("vae", overrides=[("train.lr", "5e-4"), ("model.latent_dim", "3"),
                                         ("data.name", "digits"), ("data.limit", "none")])
    assert cfg.train.lr == 5e-4 and cfg.model_cfg.latent_dim == 3
    assert cfg.data.name == "digits" and cfg.data.limit is None


def test_later_overrides_win():
    cfg = build_config("vae", overrides=[("lr", "1e-4"), ("train.lr", "3e-4")])
    assert cfg.train.lr == 3e-4


def test_unknown_key_suggests_close_match():
    with pytest.raises(GenzooError) as e:
        build_config("vae", overrides=[("lrr", "1e-4")])
    msg = str(e.value)
    assert msg.startswith("unknown setting 'lrr'")
    assert "did you mean lr" in msg


def test_unknown_dotted_key_and_section():
    with pytest.raises(GenzooError, match=r"unknown setting 'latent_dimm'.*latent_dim"):
        build_config("vae", overrides=[("model.latent_dimm", "2")])
    with pytest.raises(GenzooError, match="unknown setting 'lr'"):
        build_config("vae", overrides=[("model.lr", "1e-4")])  # lr is in train, not model
    with pytest.raises(GenzooError, match="unknown section 'optim'"):
        build_config("vae", overrides=[("optim.lr", "1e-4")])


def _shared_keys(model: str) -> set[str]:
    names = [{f.name for f in dataclasses.fields(c)}
             for c in (get_model_class(model).Config, DataConfig, TrainConfig)]
    return {k for i, a in enumerate(names) for b in names[i + 1:] for k in a & b}


def test_channels_is_the_only_key_shared_by_vae_sections():
    # if a new field makes another key ambiguous, the test below covers it automatically
    assert _shared_keys("vae") == {"channels"}
    assert _shared_keys("gan") == set()


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_ambiguous_plain_keys_are_refused(model):
    for key in sorted(_shared_keys(model)):
        with pytest.raises(GenzooError) as e:
            build_config(model, overrides=[(key, "3")])
        msg = str(e.value)
        assert f"model.{key}" in msg and f"data.{key}" in msg


def test_channels_must_be_dotted_for_vae():
    with pytest.raises(GenzooError) as e:
        build_config("vae", overrides=[("channels", "3")])
    assert "model.channels" in str(e.value) and "data.channels" in str(e.value)
    cfg = build_config("vae", overrides=[("data.channels", "3"), ("model.channels", "16,32")])
    assert cfg.data.channels == 3
    assert cfg.model_cfg.channels == (16, 32)


def test_channels_is_unambiguous_for_dcgan():
    cfg = build_config("dcgan", overrides=[("channels", "3")])
    assert cfg.data.channels == 3


def test_unknown_model():
    with pytest.raises(GenzooError) as e:
        build_config("nosuchmodel")
    assert "unknown model 'nosuchmodel'" in str(e.value)
    assert "dcgan" in str(e.value) and "vae" in str(e.value)


# ----------------------------------------------------------------------------- config files


def _write(tmp_path, text: str, name: str = "c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_config_file_overrides_preset_and_set_overrides_file(tmp_path):
    f = _write(tmp_path, "description: my run\n"
                         "model: {name: vae, latent_dim: 4, hidden: [32, 8]}\n"
                         "data: {name: digits}\n"
                         "train: {lr: 5.0e-4, steps: 10}\n")
    cfg = build_config("vae", config_file=f)
    assert cfg.train.lr == 5e-4 and cfg.train.steps == 10
    assert cfg.model_cfg.latent_dim == 4 and cfg.model_cfg.hidden == (32, 8)
    assert cfg.data.name == "digits"
    assert cfg.data.binarize == "dynamic" and cfg.train.batch_size == 128  # still the preset's
    cfg = build_config("vae", config_file=f, overrides=[("lr", "1e-4"), ("steps", "20")])
    assert cfg.train.lr == 1e-4 and cfg.train.steps == 20
    assert cfg.model_cfg.latent_dim == 4 and cfg.data.name == "digits"  # file still applies


def test_config_file_yaml_scalars_are_type_checked(tmp_path):
    # PyYAML reads `1e-3` (no dot) as a string: it must still become a float
    cfg = build_config("vae", config_file=_write(tmp_path, "train: {lr: 1e-3, steps: 1e3}\n"))
    assert cfg.train.lr == 1e-3 and type(cfg.train.lr) is float
    assert cfg.train.steps == 1000 and type(cfg.train.steps) is int
    with pytest.raises(GenzooError, match="train.steps"):
        build_config("vae", config_file=_write(tmp_path, "train: {steps: abc}\n"))
    with pytest.raises(GenzooError, match="finite"):
        build_config("vae", config_file=_write(tmp_path, "train: {lr: .nan}\n"))


def test_empty_config_file_and_empty_sections(tmp_path):
    assert build_config("vae", config_file=_write(tmp_path, "")) == build_config("vae")
    assert build_config("vae", config_file=_write(tmp_path, "train:\n")) == build_config("vae")


@pytest.mark.parametrize("text, fragment", [
    ("train: {lr: [1\n", "not valid YAML"),
    ("- 1\n- 2\n", "must hold a mapping"),
    ("just a string\n", "must hold a mapping"),
    ("optim: {lr: 1}\n", "unknown section 'optim'"),
    ("train: 5\n", "section 'train' must be a mapping"),
    ("train: {lrr: 1}\n", "unknown setting 'lrr'"),
    ("model: {name: dcgan}\n", "config file is for model 'dcgan', not 'vae'"),
])
def test_bad_config_files(tmp_path, text, fragment):
    with pytest.raises(GenzooError, match=fragment):
        build_config("vae", config_file=_write(tmp_path, text))


@pytest.mark.parametrize("text", ["model: 5\n", "model: [1, 2]\n"])
def test_non_mapping_model_section_in_config_file(tmp_path, text):
    with pytest.raises(GenzooError, match="section 'model' must be a mapping"):
        build_config("vae", config_file=_write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(GenzooError, match="does not exist"):
        build_config("vae", config_file=str(tmp_path / "nope.yaml"))


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("key, value, fragment", [
    ("steps", "0", "steps=0 must be at least 1"),
    ("batch_size", "-1", "batch_size=-1 must be at least 1"),
    ("log_every", "0", "log_every=0"),
    ("lr", "-1", "lr=-1.0 must be positive"),
    ("lr", "0", "lr=0.0 must be positive"),
    ("beta1", "1.5", "beta1=1.5 must be in [0, 1)"),
    ("beta2", "1", "beta2=1.0 must be in [0, 1)"),
    ("ema_decay", "-0.1", "ema_decay"),
    ("grad_clip", "-1", "grad_clip"),
    ("latent_dim", "0", "latent_dim=0 must be at least 1"),
    ("hidden", "16,0", "positive"),
    ("beta", "-1", "beta"),
    ("arch", "rnn", "choose one of mlp, conv"),
    ("optimizer", "lion", "choose one of adam, adamw, sgd, rmsprop"),
    ("steps", "abc", "expected an integer"),
])
def test_validation(key, value, fragment):
    with pytest.raises(GenzooError) as e:
        build_config("vae", overrides=[(key, value)])
    assert fragment in str(e.value)


def test_validation_dcgan():
    with pytest.raises(GenzooError, match="ngf=0 must be at least 1"):
        build_config("dcgan", overrides=[("ngf", "0")])
    with pytest.raises(GenzooError, match="nsgan"):  # lists the valid losses
        build_config("dcgan", overrides=[("loss", "bogus")])


# ----------------------------------------------------------------------------- round trip


def _custom() -> RunConfig:
    return build_config("vae", overrides=[
        ("arch", "mlp"), ("hidden", "32,16"), ("latent_dim", "2"), ("data.channels", "3"),
        ("data.name", "digits"), ("image_size", "16"), ("limit", "100"), ("lr", "3e-4"),
        ("deterministic", "yes"), ("optimizer", "adamw"), ("root", "some/dir")])


@pytest.mark.parametrize("make", [_custom, lambda: build_config("dcgan"),
                                  lambda: build_config("vae")])
def test_config_from_dict_round_trip(make):
    cfg = make()
    again = config_from_dict(cfg.to_dict(), "test")
    assert again == cfg
    assert type(again.model_cfg) is type(cfg.model_cfg)
    # through JSON and YAML too, as a run directory's config.yaml stores it (tuples -> lists)
    d = yaml.safe_load(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict()))))
    assert config_from_dict(d, "test") == cfg


def test_to_dict_layout():
    d = _custom().to_dict()
    assert list(d) == ["model", "data", "train"]
    assert d["model"]["name"] == "vae" and d["model"]["hidden"] == (32, 16)
    assert d["data"]["channels"] == 3 and d["data"]["root"] == "some/dir"
    assert d["train"]["deterministic"] is True


def test_config_from_dict_errors():
    with pytest.raises(GenzooError, match="no model.name"):
        config_from_dict({"train": {}}, "x.yaml")
    with pytest.raises(GenzooError, match="no model.name"):
        config_from_dict({"model": "vae"}, "x.yaml")
    with pytest.raises(GenzooError, match="unknown model 'nope'"):
        config_from_dict({"model": {"name": "nope"}}, "x.yaml")
    with pytest.raises(GenzooError, match="unknown setting 'bogus'"):
        config_from_dict({"model": {"name": "vae"}, "train": {"bogus": 1}}, "x.yaml")


@pytest.mark.parametrize("text", ["image: true\n", "points: [1, 2]\n", "image:\n  model: 3\n"])
def test_data_kind_sections_of_a_config_file_must_be_mappings(text, tmp_path):
    """Found by the fuzz test: `image: true` crashed with an AttributeError."""
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(GenzooError, match="must be a mapping"):
        build_config("vae", config_file=str(f))
