"""Ablation sweeps: grid and one-at-a-time expansion, a tiny real sweep, its columns, and resume."""
import csv
import statistics

import keras
import pytest
import yaml
from helpers import ROOT

from zoo.common.errors import ConfigError
from zoo.models.builder import trace
from zoo.models.config import load_model_config
from zoo.models.keras_ops import KerasOps
from zoo.studies.ablation import Ablation, expand, load_ablation, result_columns, run_ablation, write_report


def test_grid_expansion_is_the_full_product():
    ablation = Ablation("x.yaml", {"model.layers.conv1.kernel_size": [1, 3, 5], "model.layers.conv1.strides": [1, 2]})
    variants = expand(ablation)
    assert len(variants) == 6
    assert variants[0].name == "kernel_size-1_strides-1" and variants[-1].name == "kernel_size-5_strides-2"
    assert len({v.name for v in variants}) == 6


def test_one_at_a_time_varies_each_axis_from_the_baseline():
    ablation = Ablation("x.yaml", {"a.kernel_size": [3, 5, 7], "a.strides": [1, 2]}, mode="one_at_a_time")
    values = [v.values for v in expand(ablation)]
    assert values == [{"a.kernel_size": 3, "a.strides": 1}, {"a.kernel_size": 5, "a.strides": 1},
                      {"a.kernel_size": 7, "a.strides": 1}, {"a.kernel_size": 3, "a.strides": 2}]


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "ablations").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_ablations_load(path):
    ablation, experiment = load_ablation(path)
    assert experiment.exists() and expand(ablation)


def test_an_axis_without_values_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("experiment: ../x.yaml\naxes: {model.layers.conv1.kernel_size: []}\n")
    with pytest.raises(ConfigError, match=r"axes.model.layers.conv1.kernel_size: expected a non-empty list"):
        load_ablation(path)


# The sweeps below switch the SavedModel export off (test_export.py tests exports): each run keeps its
# model.keras, and saves the 0.5 s of a SavedModel written and verified.
@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, patterns_dir):
    tmp = tmp_path_factory.mktemp("sweep")
    ablation = {
        "experiment": str(ROOT / "configs/experiments/default.yaml"),
        "set": {"train.epochs": 1, "train.steps_per_epoch": 3, "train.eval_steps": 2, "train.batch_size": 32,
                "data.data_dir": patterns_dir, "export.saved_model": False},
        "axes": {"model.layers.conv1.kernel_size": [3, 9], "model.layers.conv1.padding": ["same", "valid"],
                 "model.layers.conv1.strides": [2]},
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(ablation))
    workdir = tmp / "out"
    return path, workdir, run_ablation(path, workdir=workdir)


def test_sweep_writes_results_with_the_promised_columns(tiny_sweep):
    _, workdir, rows = tiny_sweep
    with open(workdir / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4
    assert {"kernel_size", "strides", "padding", "output_size", "receptive_field", "params", "macs", "train_accuracy",
            "eval_accuracy", "images_per_sec", "wall_seconds"} <= set(table[0])
    assert (workdir / "results.md").read_text().count("\n| ") == 5  # header + 4 rows
    assert (workdir / "accuracy_vs_kernel_size.png").stat().st_size > 0
    assert (workdir / "accuracy_vs_macs.png").stat().st_size > 0
    assert list((workdir / "hparams").rglob("events.out.tfevents.*"))


def test_sweep_output_size_equals_the_keras_output_shape(tiny_sweep):
    path, _, rows = tiny_sweep
    for row in (r for r in rows if r["status"] == "ok"):
        config = load_model_config({"base": "lenet5", "input_shape": [32, 32, 1],
                                    "layers": {"conv1": {k: row[k] for k in ("kernel_size", "padding", "strides")}}})
        conv1 = next(trace(config, KerasOps(), keras.Input(config.input_shape)))
        assert list(conv1.output.shape[1:3]) == row["output_size"]
    assert [r["output_size"] for r in rows if r["status"] == "ok"] == [[16, 16], [15, 15], [16, 16], [12, 12]]


def test_sweep_records_impossible_variants_instead_of_crashing(tmp_path, patterns_dir):
    ablation = {"experiment": str(ROOT / "configs/experiments/default.yaml"),
                "set": {"train.epochs": 1, "train.steps_per_epoch": 2, "train.eval_steps": 1,
                        "data.data_dir": patterns_dir, "export.saved_model": False},
                "axes": {"model.layers.conv1.kernel_size": [40, 3], "model.layers.conv1.padding": ["valid"]}}
    path = tmp_path / "impossible.yaml"
    path.write_text(yaml.safe_dump(ablation))
    rows = run_ablation(path, workdir=tmp_path / "out")
    assert rows[0]["status"].startswith("invalid:") and "height would be -7" in rows[0]["status"]
    assert rows[1]["status"] == "ok"


def test_rerun_skips_finished_variants(tiny_sweep, capsys):
    path, workdir, rows = tiny_sweep
    summaries = {p: p.read_text() for p in workdir.rglob("summary.json")}
    again = run_ablation(path, workdir=workdir)
    out = capsys.readouterr().out
    assert out.count("already finished") == 4
    assert {p: p.read_text() for p in workdir.rglob("summary.json")} == summaries
    assert [r["eval_accuracy"] for r in again] == [r["eval_accuracy"] for r in rows]


@pytest.mark.parametrize("block, dilation, params, extent", [
    ("conv", 1, 3 * 3 * 32 * 64, 3),                  # 3*3*C_in*C_out
    ("separable_conv", 1, 3 * 3 * 32 + 32 * 64, 3),   # 3*3*C_in + C_in*C_out
    ("conv", 2, 3 * 3 * 32 * 64, 5),                  # a dilation-2 3x3 sees 5x5
])
def test_conv_types_varied_layer_matches_the_formulas(block, dilation, params, extent):
    from zoo.experiment import load_experiment
    from zoo.studies.ablation import describe_layer

    experiment = load_experiment(ROOT / "configs/experiments/cifar10_small.yaml",
                                 [f"model.layers.conv2.type={block}", f"model.layers.conv2.dilation_rate={dilation}"])
    described = describe_layer(experiment, {"input_shape": [32, 32, 3], "num_classes": 10}, "conv2")
    assert described["layer_params"] == params and described["kernel_extent"] == extent
    assert described["output_size"] == [16, 16]


def test_a_seeded_grid_reports_mean_spread_and_each_axis_against_the_noise(tmp_path):
    # The report alone, on the rows four seeded runs would return: the training of seeds, their run
    # directories and a rerun are the zip test's below (4 runs of 5-6 s each on the Zen 3 here too).
    ablation_path = tmp_path / "seeded.yaml"
    ablation_path.write_text(yaml.safe_dump({"experiment": str(ROOT / "configs/experiments/default.yaml"),
                                             "axes": {"model.layers.conv1.kernel_size": [3, 5]}, "seeds": [0, 1]}))
    ablation, _ = load_ablation(ablation_path)
    accuracies = {(3, 0): 0.50, (3, 1): 0.54, (5, 0): 0.70, (5, 1): 0.72}
    rows = [{"kernel_size": kernel, "seed": seed, "params": 100 * kernel, "macs": 1000 * kernel,
             "train_accuracy": accuracy, "eval_accuracy": accuracy, "images_per_sec": 100.0, "status": "ok"}
            for (kernel, seed), accuracy in accuracies.items()]
    write_report(tmp_path, "seeded", ablation, result_columns(ablation), rows)
    with open(tmp_path / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0])[:2] == ["kernel_size", "seed"] and "eval_accuracy" in table[0]
    assert [(row["kernel_size"], row["seed"]) for row in table] == [("3", "0"), ("3", "1"), ("5", "0"), ("5", "1")]
    report = (tmp_path / "results.md").read_text()
    assert f"{statistics.fmean([0.50, 0.54]):.4f} ± {statistics.stdev([0.50, 0.54]):.4f}" in report
    assert "Does each axis matter beyond the noise?" in report
    assert "`kernel_size`: " in report and "of 1 pairs differ by more than twice the standard error" in report
    assert (tmp_path / "accuracy_vs_kernel_size.png").stat().st_size > 0


def test_axis_effects_call_a_difference_noise_only_within_twice_its_standard_error():
    from zoo.studies.repeats import axis_effects, summarize

    def runs(kernel, scores):
        return [{"kernel_size": kernel, "eval_accuracy": s, "status": "ok"} for s in scores]

    clear = summarize(runs(3, [0.90, 0.91, 0.92]) + runs(5, [0.95, 0.96, 0.97]), ["kernel_size"])
    noisy = summarize(runs(3, [0.90, 0.94, 0.98]) + runs(5, [0.91, 0.95, 0.99]), ["kernel_size"])
    assert axis_effects(clear, ["kernel_size"])[0].above_noise == 1
    assert axis_effects(noisy, ["kernel_size"])[0].above_noise == 0
    assert axis_effects(noisy, ["kernel_size"])[0].largest == pytest.approx(0.01)


@pytest.mark.parametrize("kernel, repeat, params, extent", [
    (7, 1, 7 * 7 * 32 * 32, 7), (3, 3, 3 * 3 * 3 * 32 * 32, 7),   # same receptive field, 32 -> 32 channels
    (5, 1, 5 * 5 * 32 * 32, 5), (3, 2, 2 * 3 * 3 * 32 * 32, 5),
])
def test_stacked_3x3_pairs_see_as_far_with_the_counted_parameters(kernel, repeat, params, extent):
    from zoo.experiment import load_experiment
    from zoo.studies.ablation import describe_layer

    ablation, experiment_path = load_ablation(ROOT / "configs/ablations/stacked_3x3.yaml")
    assert [(v.values["model.layers.conv2.kernel_size"], v.values["model.layers.conv2.repeat"])
            for v in expand(ablation)] == [(7, 1), (3, 3), (5, 1), (3, 2)]
    experiment = load_experiment(experiment_path, [*(f"{key}={value}" for key, value in ablation.set.items()),
                                                   f"model.layers.conv2.kernel_size={kernel}",
                                                   f"model.layers.conv2.repeat={repeat}"])
    described = describe_layer(experiment, {"input_shape": [32, 32, 3], "num_classes": 10}, "conv2")
    assert described["layer_params"] == params and described["kernel_extent"] == extent


def test_bottleneck_has_the_textbook_parameter_count():
    from zoo.experiment import load_experiment
    from zoo.studies.ablation import describe_layer

    experiment = load_experiment(ROOT / "configs/experiments/cifar10_small.yaml",
                                 ["model.layers.conv2.type=bottleneck"])
    described = describe_layer(experiment, {"input_shape": [32, 32, 3], "num_classes": 10}, "conv2")
    assert described["layer_params"] == 32 * 16 + 3 * 3 * 16 * 16 + 16 * 64 and described["output_size"] == [16, 16]


def test_zip_mode_needs_axes_of_one_length():
    with pytest.raises(ConfigError, match="lists of one length"):
        expand(Ablation("x.yaml", {"a.kernel_size": [7, 3], "a.repeat": [1]}, mode="zip"))


@pytest.mark.parametrize("fields, message", [
    ({"mode": "zip", "labels": ["only one"]}, r"labels: expected one label per variant \(2\), received 1"),
    ({"labels": ["a", "b"]}, r"labels: labels name the variants of mode zip, received mode 'grid'"),
])
def test_labels_are_checked_before_any_training(tmp_path, fields, message):
    path = tmp_path / "labelled.yaml"
    path.write_text(yaml.safe_dump({"experiment": "x.yaml", "axes": {"train.optimizer.learning_rate": [0.1, 0.2]},
                                    **fields}))
    with pytest.raises(ConfigError, match=message):
        load_ablation(path)


def test_versus_first_compares_each_variant_with_the_baseline_and_knows_when_it_cannot():
    from zoo.studies.repeats import summarize, versus_first

    def runs(rate, scores):
        return [{"learning_rate": rate, "eval_accuracy": s, "status": "ok"} for s in scores]

    summaries = summarize(runs(0.2, [0.40, 0.50, 0.30]) + runs(0.1, [0.69, 0.70, 0.71])
                          + runs(0.02, [0.83, 0.82, 0.84]) + runs(0.05, [0.80, 0.84, 0.82]), ["learning_rate"])
    differences = versus_first(summaries)
    assert [(d.reference.values["learning_rate"], d.other.values["learning_rate"]) for d in differences] == \
        [(0.2, 0.1), (0.2, 0.02), (0.2, 0.05), (0.05, 0.02)]  # then the best against the runner-up
    assert [d.above_noise for d in differences] == [True, True, True, False]
    assert differences[1].points == pytest.approx(43.0)
    single = versus_first(summarize(runs(0.2, [0.4]) + runs(0.1, [0.7]), ["learning_rate"]))
    assert not single[0].measurable and not single[0].above_noise
    assert "the noise is unknown" in single[0].sentence("b", "a")


def test_zip_ablation_reports_each_labelled_variant_against_the_first(tmp_path, patterns_dir):
    ablation = {"experiment": str(ROOT / "configs/experiments/default.yaml"),
                "set": {"train.epochs": 1, "train.steps_per_epoch": 2, "train.eval_steps": 1, "train.batch_size": 32,
                        "data.data_dir": patterns_dir, "export.saved_model": False},
                "mode": "zip", "labels": ["baseline", "faster"], "seeds": [0, 1],
                "axes": {"train.optimizer.learning_rate": [0.01, 0.05], "train.label_smoothing": [0.0, 0.1]}}
    path = tmp_path / "zipped.yaml"
    path.write_text(yaml.safe_dump(ablation, sort_keys=False))
    rows = run_ablation(path, workdir=tmp_path / "out")
    assert [(r["variant"], r["seed"]) for r in rows] == [("baseline", 0), ("baseline", 1), ("faster", 0), ("faster", 1)]
    assert sorted(p.parent.name for p in (tmp_path / "out" / "runs").rglob("summary.json")) == \
        ["seed-0", "seed-0", "seed-1", "seed-1"]
    with open(tmp_path / "out" / "results.csv") as handle:
        assert [(row["variant"], row["seed"]) for row in csv.DictReader(handle)] == [
            ("baseline", "0"), ("baseline", "1"), ("faster", "0"), ("faster", "1")]
    report = (tmp_path / "out" / "results.md").read_text()
    baseline = [r["eval_accuracy"] for r in rows if r["variant"] == "baseline"]
    assert f"{statistics.fmean(baseline):.4f} ± {statistics.stdev(baseline):.4f}" in report
    assert "Is each difference beyond the noise?" in report and "- faster: " in report and "against baseline" in report
    assert "| variant | learning_rate | label_smoothing | runs |" in report
    assert "layer_macs" not in report  # no axis addresses a layer: its columns would be empty
    assert (tmp_path / "out" / "accuracy_by_variant.png").stat().st_size > 0
    assert not (tmp_path / "out" / "accuracy_vs_macs.png").exists()  # one architecture: one MACs value
    assert run_ablation(path, workdir=tmp_path / "out") == rows  # a rerun trains nothing and reports the same
