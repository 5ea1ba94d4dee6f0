"""``madutils loop`` is generated from the settings dataclasses: every field is an option."""

import dataclasses
import subprocess
import sys
import types

import pandas as pd
import pytest

from madutils import cli
from madutils.cli import MIXED_PRECISION, config_from_args, loop_options, main
from madutils.data.images import DATASETS
from madutils.loops.config import (
    DATA_CHOICES,
    DEVICES,
    FAMILIES,
    MODELS,
    PATHS,
    SYNTHETIC_SOURCES,
    LoopConfig,
)
from madutils.loops.image_config import IMAGE_MODELS, SAMPLERS, ImageLoopConfig

CONFIGS = (LoopConfig, ImageLoopConfig)


def _help_text(capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["loop", "--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _argv(config) -> list[str]:
    """Every field of ``config`` as command-line options."""
    argv = []
    for name, value in dataclasses.asdict(config).items():
        if isinstance(value, bool):  # a flag pair: --name / --no-name
            argv.append(_flag(name) if value else "--no-" + _flag(name).removeprefix("--"))
        else:
            argv += [_flag(name), cli._show(tuple(value) if isinstance(value, list) else value)]
    return argv


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_field_is_an_option_with_its_help_and_default(cls, capsys):
    text = _help_text(capsys)
    options = loop_options()
    actions = {action.dest: action for action in cli._loop_parser()._actions}
    for field in dataclasses.fields(cls):
        assert field.name in options and field.name in actions, field.name
        flags = [_flag(field.name)]
        if field.type in (bool, "bool"):  # a flag pair
            flags.append("--no-" + _flag(field.name).removeprefix("--"))
        assert actions[field.name].option_strings == flags
        assert f"{_flag(field.name)} " in text or f"{_flag(field.name)}," in text
        assert field.metadata["help"] in actions[field.name].help, field.name
        assert cli._show(field.default) in actions[field.name].help, field.name


def test_the_options_are_exactly_the_fields_plus_the_run_options():
    names = {f.name for cls in CONFIGS for f in dataclasses.fields(cls)}
    assert set(loop_options()) == names
    dests = {a.dest for a in cli._loop_parser()._actions} - {"help"}
    assert dests == names | set(cli.RUN_OPTIONS)


def test_help_lists_every_choice(capsys):
    text = _help_text(capsys)
    for choices in (
        FAMILIES,
        MODELS + IMAGE_MODELS,
        SYNTHETIC_SOURCES,
        PATHS,
        DEVICES,
        DATA_CHOICES,
        SAMPLERS,
        DATASETS,
        MIXED_PRECISION,
    ):
        assert "{" + ",".join(choices) in text, choices
    for option in loop_options().values():
        for choice in option.choices or ():
            assert choice in text
    assert "default: 100 for gaussian, mixture, flow" not in text  # n_ini's helps differ
    assert "(default: 10 for gaussian, mixture, flow; 5 for ddpm, wgan, stylegan2)" in text


def test_mixed_precision_choices_are_the_ones_the_config_accepts():
    for value in MIXED_PRECISION:
        ImageLoopConfig(
            dataset="digits", held_out=100, n_ini=100, device="cpu", mixed_precision=value
        )
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        ImageLoopConfig(
            dataset="digits", held_out=100, n_ini=100, device="cpu", mixed_precision="x"
        )


def test_n_layers_reaches_the_config():
    config = config_from_args(["--model", "flow", "--n-layers", "4"])
    assert isinstance(config, LoopConfig)
    assert config.n_layers == 4 and config.model == "flow"
    assert config == dataclasses.replace(LoopConfig(model="flow"), n_layers=4)


def test_left_out_options_take_the_dataclass_defaults():
    assert config_from_args([]) == LoopConfig()
    assert config_from_args(["--out", "x", "--quiet"]) == LoopConfig()
    assert config_from_args(["--model", "ddpm"]) == ImageLoopConfig()
    assert config_from_args(["--model", "wgan"]) == ImageLoopConfig(model="wgan")


def test_none_sets_an_optional_field_to_none():
    config = config_from_args(["--data", "none", "--n-real", "NONE", "--metrics", "none"])
    assert config == LoopConfig()


def test_every_loop_config_field_reaches_the_config():
    config = LoopConfig(
        family="fresh_data",
        model="flow",
        data="rosenbrock",
        n_ini=50,
        n_real=40,
        n_synthetic=60,
        generations=3,
        lam=0.9,
        synthetic_source="memory",
        memory=2,
        seeds=2,
        seed=3,
        n_components=4,
        n_layers=4,
        hidden=16,
        epochs=2,
        batch_size=32,
        n_eval=30,
        k=3,
        metrics=("heldout_nll", "precision"),
    )
    assert config_from_args(_argv(config)) == config
    pooled = LoopConfig(family="fresh_data", dim=3, n_total=200, real_fraction=0.25)
    assert config_from_args(_argv(pooled)) == pooled


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_every_image_config_field_reaches_the_config(model):
    config = ImageLoopConfig(
        family="fresh_data",
        model=model,
        dataset="digits",
        image_size=8,
        held_out=100,
        n_ini=100,
        n_real=50,
        n_synthetic=70,
        generations=2,
        lam=0.8,
        synthetic_source="accumulate",
        memory=3,
        epochs=2,
        batch_size=16,
        lr=2e-4,
        channels=(8, 16),
        layers_per_block=2,
        timesteps=100,
        ema_decay=0.9,
        sampler="ddim",
        steps=10,
        latent_dim=8,
        width=8,
        n_critic=2,
        n_eval=60,
        k=4,
        feature_epochs=1,
        seed=7,
        device="cpu",
        mixed_precision="no",
        fixed_steps=True,
    )
    built = config_from_args(_argv(config))
    assert isinstance(built, ImageLoopConfig) and built == config
    assert built.channels == (8, 16)


def _one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        config_from_args(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("madutils loop: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--family", "bogus"], "argument --family: invalid choice: 'bogus' (choose from"),
        (["--model", "vae"], "choose from gaussian, mixture, flow, ddpm, wgan"),
        (["--dim", "two"], "argument --dim: expected an integer; got 'two'"),
        (["--lam", "high"], "argument --lam: expected a number; got 'high'"),
        (["--n-real", "x"], "argument --n-real: expected an integer or none"),
        (["--metrics", "w2_squared,fid2"], "argument --metrics: invalid choice: 'fid2'"),
        (["--model", "ddpm", "--channels", "32,,64"], "argument --channels: expected a comma"),
        (["--lam", "1.5"], "lam must be in (0, 1]"),
        (["--generations", "0"], "generations must be a positive integer"),
        (["--model", "flow", "--n-layers", "0"], "n_layers must be a positive integer"),
        (["--model", "ddpm", "--ema-decay", "1"], "ema_decay must be a number in [0, 1)"),
        (
            ["--model", "ddpm", "--n-layers", "4"],
            "--n-layers is not an option of --model ddpm (only of --model gaussian, mixture, flow)",
        ),
        (
            ["--held-out", "10", "--sampler", "ddim"],
            "--held-out, --sampler are not options of --model gaussian (only of --model ddpm, "
            "wgan, stylegan2)",
        ),
        (["--fam", "fresh_data"], "unrecognized arguments: --fam fresh_data"),
        (["--n-layers"], "argument --n-layers: expected one argument"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(argv, message, capsys):
    assert message in _one_line_error(argv, capsys)


def test_bad_input_from_main_is_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["loop", "--out", str(tmp_path), "--model", "wgan", "--seeds", "3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "madutils loop: error: --seeds is not an option of --model wgan (only of --model "
        "gaussian, mixture, flow)\n"
    )


def test_a_tiny_gaussian_loop_runs_from_the_command_line(tmp_path, capsys):
    argv = ["loop", "--n-ini", "20", "--generations", "2", "--seeds", "3", "--dim", "3"]
    argv += ["--metrics", "w2_squared,cov_trace", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "generation 2, mean over 3 seed(s):"
    assert [line.split()[0] for line in lines[1:3]] == ["w2_squared", "cov_trace"]
    run_dir = lines[-1].removeprefix("run directory: ")
    table = pd.read_csv(f"{run_dir}/results.csv")
    assert set(table.metric) == {"w2_squared", "cov_trace"} and table.generation.max() == 2


def test_the_image_loop_prints_the_same_summary(monkeypatch, tmp_path, capsys):
    """The image loop itself is not run: a stand-in records the config it was given."""
    seen = {}

    def run_image_loop(config, out, *, progress):
        seen.update(config=config, out=out, progress=progress)
        table = pd.DataFrame(
            {"generation": [0, 1, 1], "metric": ["fid", "fid", "recall"], "value": [1, 2, 0.5]}
        )
        return types.SimpleNamespace(table=table, run_dir="RUN", feature_accuracy=0.98)

    fake = types.ModuleType("madutils.loops.images")
    fake.run_image_loop = run_image_loop
    monkeypatch.setitem(sys.modules, "madutils.loops.images", fake)
    argv = ["loop", "--model", "wgan", "--dataset", "digits", "--held-out", "100"]
    argv += ["--n-ini", "100", "--device", "cpu", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    assert seen == {
        "config": ImageLoopConfig(
            model="wgan", dataset="digits", held_out=100, n_ini=100, device="cpu"
        ),
        "out": str(tmp_path),
        "progress": False,
    }
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "generation 1, seed 0, feature accuracy 0.9800:"
    assert lines[1].split() == ["fid", "2"] and lines[2].split() == ["recall", "0.5"]
    assert lines[-1] == "run directory: RUN"


def test_a_new_field_of_any_type_becomes_an_option(monkeypatch):
    """Options follow the dataclasses: a field added there needs no change to the CLI."""

    @dataclasses.dataclass(frozen=True)
    class Settings:
        model: str = dataclasses.field(default="a", metadata={"help": "the model"})
        fast: bool = dataclasses.field(default=False, metadata={"help": "go fast"})
        sizes: tuple[int, ...] = dataclasses.field(default=(1, 2), metadata={"help": "sizes"})
        rate: float | None = dataclasses.field(default=None, metadata={"help": "a rate"})

    monkeypatch.setattr(cli, "_kinds", lambda: ((Settings, ("a", "b")),))
    monkeypatch.setattr(cli, "_choices", lambda: {"model": ("a", "b")})
    argv = ["--model", "b", "--fast", "--sizes", "3,4,5", "--rate", "0.5"]
    assert config_from_args(argv) == Settings("b", True, (3, 4, 5), 0.5)
    assert config_from_args(["--no-fast", "--rate", "none"]) == Settings()
    help_text = cli._loop_parser().format_help()
    for flag in ("--model {a,b}", "--fast, --no-fast", "--sizes INT[,INT...]", "FLOAT|none"):
        assert flag in help_text

    @dataclasses.dataclass(frozen=True)
    class Unsupported:
        table: dict = dataclasses.field(default_factory=dict, metadata={"help": "?"})

    monkeypatch.setattr(cli, "_kinds", lambda: ((Unsupported, ("a",)),))
    with pytest.raises(TypeError, match="Unsupported.table: cannot make an option"):
        loop_options()


def test_top_level_and_sweep_help_import_neither_torch_nor_the_image_models():
    code = (
        "import sys\n"
        "from madutils.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES', 'torch' in sys.modules, 'diffusers' in sys.modules)\n"
        "try:\n"
        "    main(['sweep', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES', 'torch' in sys.modules, 'diffusers' in sys.modules)\n"
        "try:\n"
        "    main(['loop', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES', 'diffusers' in sys.modules, 'madutils.loops.images' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("MODULES")]
    assert lines == ["MODULES False False"] * 3


@pytest.mark.parametrize(
    "argv, spec",
    [
        (
            ["--model", "flow", "--n-layers", "4", "--metrics", "heldout_nll", "--lam", "0.5"],
            "model: flow\nbase:\n  n_layers: 4\n  metrics: [heldout_nll]\n  lam: 0.5\n",
        ),
        (
            ["--model", "ddpm", "--channels", "16,32", "--epochs", "2", "--device", "cpu"],
            "model: ddpm\nbase:\n  channels: [16, 32]\n  epochs: 2\n  device: cpu\n",
        ),
    ],
    ids=["flow", "ddpm"],
)
def test_a_sweep_file_takes_the_settings_of_madutils_loop(argv, spec, tmp_path):
    """The base of a sweep file and the options of ``madutils loop`` are one set of settings."""
    from madutils.sweep_spec import load_sweep_spec

    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    assert load_sweep_spec(path).base == config_from_args(argv)
