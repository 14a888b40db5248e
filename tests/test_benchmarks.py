"""`make bench`'s runner: each row times what its label says, and a bad argument is one line."""
import dataclasses
import importlib
import json
import os
import sys

import numpy as np
import pytest

from helpers import ROOT, assert_one_line_error, run, run_here

import zoo.common.cpu
from zoo.common.cpu import Cpu

sys.path.insert(0, str(ROOT / "benchmarks"))
bench = importlib.import_module("run")  # benchmarks/run.py
zoo_rows = importlib.import_module("zoo_rows")
paired = importlib.import_module("paired")  # benchmarks/paired.py


def test_benchmark_refuses_an_unknown_model_in_one_line():
    assert_one_line_error(run("benchmarks/run.py", "--models", "resnet20,lenet7"), "unknown benchmark model 'lenet7'",
                          "did you mean 'lenet5'")


class FakeRow:
    """Stands in for zoo_rows' rows: no model is built; the trainer answers with its precision."""

    def __init__(self, model_name, batch_size, precision="float32", **settings):
        self.precision = precision

    def run(self, steps):
        return steps / 1000

    def images_per_sec(self, steps):
        return {"float32": 1.0, "mixed_bfloat16": 2.0}[self.precision]


ZEN4 = Cpu("AMD EPYC 9R14", "x86_64", frozenset({"avx2", "fma", "avx512f", "avx512_bf16"}))
ZEN3 = Cpu("AMD EPYC 7B13", "x86_64", frozenset({"avx2", "fma"}))
XEON_AVX512 = Cpu("Intel Xeon", "x86_64", frozenset({"avx2", "fma", "avx512f", "avx512_bf16"}))


def fake_rows(monkeypatch, cpu: Cpu) -> tuple[list, list[str]]:
    """build_rows('lenet5') on `cpu`, with no model built and no PyTorch."""
    for name in ("InMemoryStep", "Pipeline", "Trainer"):
        monkeypatch.setattr(zoo_rows, name, FakeRow)
    monkeypatch.setitem(sys.modules, "reference_torch", None)  # `import reference_torch` fails: rows skipped
    monkeypatch.setattr(importlib.import_module("reference_keras"), "MODELS", {"lenet5": lambda: None})
    monkeypatch.setattr(zoo.common.cpu, "this_cpu", lambda: cpu)
    monkeypatch.setenv("TFDS_DATA_DIR", "/prepared")
    skipped = []
    return bench.build_rows("lenet5", skipped), skipped


def test_each_trainer_row_times_its_own_precision(monkeypatch):
    # Until 2026-12-02 a late-bound lambda made both trainer rows time the mixed_bfloat16 trainer.
    rows, skipped = fake_rows(monkeypatch, ZEN4)
    rows = [row for row in rows if row.path.startswith("zoo trainer")]
    assert [(row.precision, row.measure()) for row in rows] == [("float32", 1.0), ("mixed_bfloat16", 2.0)]
    assert skipped == ["lenet5: PyTorch rows (torch is not installed: pip install -e '.[bench]')"]


def test_bfloat16_rows_are_left_out_with_a_message_on_a_cpu_without_bfloat16_units(monkeypatch):
    rows, skipped = fake_rows(monkeypatch, ZEN3)
    assert rows and all(row.precision == "float32" or row.precision == "-" for row in rows)
    assert any("this CPU has no bfloat16 units" in line for line in skipped)


def test_under_an_isa_cap_the_bfloat16_rows_are_left_out_naming_the_cap(monkeypatch):
    rows, skipped = fake_rows(monkeypatch, dataclasses.replace(XEON_AVX512, isa_cap="AVX512_CORE"))
    assert all(row.precision in ("float32", "-") for row in rows)
    assert any("ONEDNN_MAX_CPU_ISA=AVX512_CORE keeps the kernels off this CPU's bfloat16 units" in line
               for line in skipped)


def test_profile_step_sums_the_step_by_op_type():
    result = run_here("benchmarks/profile_step.py", "lenet5", "--steps", "3", "--top", "3")
    assert result.returncode == 0, result.stderr
    assert "convolutions" in result.stdout and "Conv2D" in result.stdout, result.stdout


def test_profile_step_sums_pytorchs_step_by_aten_op():
    pytest.importorskip("torch")
    result = run_here("benchmarks/profile_step.py", "lenet5", "--pytorch", "--steps", "3", "--top", "3")
    assert result.returncode == 0, result.stderr
    assert "PyTorch" in result.stdout and "convolutions" in result.stdout and "aten::" in result.stdout, result.stdout


def test_profile_step_refuses_an_unknown_model_in_one_line():
    assert_one_line_error(run("benchmarks/profile_step.py", "lenet7"), "unknown benchmark model 'lenet7'",
                          "did you mean 'lenet5'")


@pytest.mark.parametrize("cap, aten, mkl", [("AVX2", "avx2", "AVX2"), ("AVX", "default", "AVX"), ("", None, None)])
def test_pytorch_is_held_to_the_instructions_onednn_is_capped_at(monkeypatch, cap, aten, mkl):
    pytest.importorskip("torch")
    reference_torch = importlib.import_module("reference_torch")
    monkeypatch.setattr(reference_torch, "this_cpu", lambda: dataclasses.replace(XEON_AVX512, isa_cap=cap))
    for name in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS"):
        monkeypatch.delenv(name, raising=False)
    reference_torch.match_tensorflow_instructions()
    assert (os.environ.get("ATEN_CPU_CAPABILITY"), os.environ.get("MKL_ENABLE_INSTRUCTIONS")) == (aten, mkl)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx512")  # the user's own value is kept
    reference_torch.match_tensorflow_instructions()
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx512"


def test_serving_benchmark_times_every_format_of_a_preset(tmp_path):
    import json

    from zoo.deploy.formats import FORMATS

    result = run_here("benchmarks/serving.py", "--models", "lenet5", "--rounds", "1", "--json",
                      str(tmp_path / "serving.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "serving.json").read_text())
    rows = {row["row"]: row for row in report["rows"]}
    diagnostics = ["saved_model, batch norm not folded", "saved_model that only casts its input (the call's floor)"]
    torch_rows = ["pytorch eager NCHW", "pytorch eager channels_last"] if "pytorch eager NCHW" in rows else []
    assert list(rows) == [*FORMATS, *diagnostics, *torch_rows]
    for name, row in rows.items():
        assert row["latency_ms"][0] > 0 and row["p90_ms"][0] >= row["latency_ms"][0] and row["images_per_sec"][0] > 0
        assert (row["batch1_vs_pytorch"] is None) == (not torch_rows)
        assert f"| {name} | " in result.stdout
    if not torch_rows:
        assert "PyTorch rows (torch is not installed" in result.stdout


def test_serving_benchmark_refuses_an_unknown_model_in_one_line():
    assert_one_line_error(run("benchmarks/serving.py", "--models", "resnet21"), "unknown benchmark model 'resnet21'",
                          "did you mean 'resnet20'")


def test_torchvision_parity_without_torch_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as in CI: the bench extra is not installed
    assert_one_line_error(run_here("benchmarks/torchvision_parity.py"), "torchvision_parity needs torch and "
                          "torchvision", "pip install -e '.[bench]'")


def test_comparison_writes_the_report_of_a_family_with_its_preset(tmp_path):
    pytest.importorskip("torch", reason="the comparison's PyTorch rows need the bench extra: pip install -e '.[bench]'")
    import csv
    import json

    from zoo.deploy.formats import FORMATS

    result = run_here("benchmarks/comparison.py", "--models", "lenet5_cifar", "--rounds", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "README.md").read_text()
    assert "| LeNet-5 | `lenet5_cifar` | 62,006 | 0.65M | `lenet5_cifar10` | 70.89% |" in report
    for name in [*FORMATS, "pytorch eager NCHW", "pytorch eager channels_last"]:
        assert f"| LeNet-5 | {name} | " in report
    summary = json.loads((tmp_path / "comparison.json").read_text())["models"][0]
    assert summary["torch_max_difference"] < 1e-5  # the twin with the preset's weights computes what it computes
    assert set(summary["bytes"]) == set(FORMATS) and all(size > 0 for size in summary["bytes"].values())
    with open(tmp_path / "comparison.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(FORMATS) + 2
    assert (tmp_path / "accuracy_vs_macs.png").stat().st_size > 0
    assert (tmp_path / "accuracy_vs_latency.png").stat().st_size > 0

    study = tmp_path / "results.csv"  # the equal-budget study's columns join the measurement afterwards
    study.write_text("variant,base,seed,eval_accuracy,images_per_sec,wall_seconds,status\n"
                     "LeNet-5,lenet5_cifar,0,0.5,7000,250,ok\nLeNet-5,lenet5_cifar,1,0.52,6900,251,ok\n")
    measured = (tmp_path / "comparison.json").read_text()
    result = run_here("benchmarks/comparison.py", "--models", "lenet5_cifar", "--out", str(tmp_path), "--study",
                      str(study), "--report-only")
    assert result.returncode == 0, result.stderr
    assert "| 51.00% ± 1.41 (2 seeds) | 6,950 |" in (tmp_path / "README.md").read_text()
    assert (tmp_path / "comparison.json").read_text() == measured


def test_comparison_counts_a_preset_trained_further_with_its_parents(tmp_path, monkeypatch):
    import shutil

    import yaml

    import zoo.models.presets as presets

    comparison = importlib.import_module("comparison")  # benchmarks/comparison.py
    for path in presets.PRESET_DIR.glob("lenet5_cifar10.*"):
        shutil.copy(path, tmp_path)
    parent = presets.get_preset("lenet5_cifar10", tmp_path).card
    child = {**parent, "name": "lenet5_cifar10_further",
             "training": {**parent["training"], "epochs": 10, "wall_seconds": 60.0,
                          "started_from": {"source": "lenet5_cifar10", "sha256": parent["weights"]["sha256"]}}}
    (tmp_path / "lenet5_cifar10_further.yaml").write_text(yaml.safe_dump(child))
    monkeypatch.setattr(presets, "PRESET_DIR", tmp_path)
    summary = comparison.model_summary("lenet5_cifar", "lenet5_cifar10_further", [], 0.0)
    assert summary["epochs"] == 50 and summary["epochs_by_run"] == [40, 10]
    assert summary["wall_seconds"] == pytest.approx(parent["training"]["wall_seconds"] + 60.0)
    assert "| 40 + 10 | 7.2 min |" in comparison.families_table([summary])


def test_comparison_without_torch_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as in CI: the bench extra is not installed
    assert_one_line_error(run_here("benchmarks/comparison.py", "--models", "lenet5_cifar"),
                          "the comparison needs PyTorch", "pip install -e '.[bench]'")


def test_comparison_arguments_are_checked_before_measuring(tmp_path):
    assert_one_line_error(run_here("benchmarks/comparison.py", "--models", ""), "--models: expected at least one")
    assert_one_line_error(run_here("benchmarks/comparison.py", "--study", str(tmp_path / "none.csv"), "--out",
                                   str(tmp_path)), "--study: cannot read")
    (tmp_path / "other.csv").write_text("variant,kernel_size,status\nk3,3,ok\n")
    assert_one_line_error(run_here("benchmarks/comparison.py", "--study", str(tmp_path / "other.csv"), "--out",
                                   str(tmp_path)), "--study: expected the results.csv of an ablation over model.base")
    assert_one_line_error(run_here("benchmarks/comparison.py", "--report-only", "--out", str(tmp_path)),
                          "--report-only: expected a comparison.json")


@pytest.mark.parametrize("only_first, only_second, p", [
    (0, 0, 1.0), (0, 5, 2 / 32), (9, 1, 2 * 11 / 1024), (5, 5, 1.0), (168, 211, 0.0308)])
def test_mcnemar_exact_is_the_two_sided_binomial_tail_of_the_discordant_images(only_first, only_second, p):
    assert paired.mcnemar_exact(only_first, only_second) == pytest.approx(p, abs=5e-5)


def test_paired_counts_the_images_only_one_classifier_gets_right():
    first = np.array([True, True, False, False, True, False])
    second = np.array([True, False, True, True, True, True])
    result = paired.paired(first, second)
    assert (result["only_first"], result["only_second"], result["images"]) == (1, 3, 6)
    assert (result["first_top1"], result["second_top1"]) == pytest.approx((0.5, 5 / 6))
    assert result["p_value"] == pytest.approx(paired.mcnemar_exact(1, 3)) and not result["above_noise"]


@pytest.mark.skipif(not os.environ.get("TFDS_DATA_DIR"), reason="TFDS_DATA_DIR is unset: no prepared CIFAR-10 to read")
def test_paired_scores_two_sources_on_the_same_images():
    result = run_here("benchmarks/paired.py", "lenet5_cifar10", "alexnet_cifar10", "--split", "test[:200]", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["images"], report["data"], report["split"]) == (200, "cifar10", "test[:200]")
    # the presets' cards: 70.89% and 89.26% on all 10,000 images, so AlexNet wins most of the images they split
    assert report["only_second"] > report["only_first"]
    assert report["first_top1"] == pytest.approx(0.7089, abs=0.1) and report["second_top1"] == pytest.approx(0.8926, abs=0.1)
    assert report["second_top1"] - report["first_top1"] == pytest.approx(
        (report["only_second"] - report["only_first"]) / 200)


@pytest.mark.skipif(not os.environ.get("TFDS_DATA_DIR"), reason="TFDS_DATA_DIR is unset: no prepared CIFAR-10 to read")
def test_paired_refuses_a_classifier_of_other_classes_than_the_data():
    assert_one_line_error(run_here("benchmarks/paired.py", "lenet5_cifar10", "lenet5_mnist", "--split", "test[:8]"),
                          "expected classifiers of cifar10's 10 classes (airplane, automobile", "lenet5_mnist")


def test_paired_refuses_a_mistyped_source_before_reading_data():
    assert_one_line_error(run_here("benchmarks/paired.py", "resnet32_cifar1", "resnet32_cifar10"),
                          "unknown preset 'resnet32_cifar1'", "did you mean 'resnet32_cifar10'")
