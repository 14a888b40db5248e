"""The CPU reading and the oneDNN decision it drives (zoo.common.cpu)."""
import dataclasses

import pytest

from zoo.common.cpu import Cpu, decide_onednn, onednn_setting, this_cpu

ZEN3 = Cpu("AMD EPYC 7B13", "x86_64", frozenset({"sse4_2", "avx2", "fma"}))
ZEN4 = Cpu("AMD EPYC 9R14", "x86_64", frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}))
OLD_X86 = Cpu("Intel Xeon E5-2670", "x86_64", frozenset({"sse4_2", "avx"}))
GRAVITON = Cpu("unknown CPU", "aarch64", frozenset({"asimd", "sve"}))


@pytest.mark.parametrize("cpu, value, reason", [
    (ZEN3, "1", "set by the zoo on this AVX2 CPU"),
    (ZEN4, None, "TensorFlow's default on a CPU with avx512_bf16, avx512_vnni"),
    (OLD_X86, None, "TensorFlow's default: the zoo has measured no gain"),
    (GRAVITON, None, "TensorFlow's default: the zoo has measured no gain"),
])
def test_onednn_is_turned_on_only_where_tensorflow_leaves_it_off_and_it_was_measured_to_win(cpu, value, reason):
    decided, why = decide_onednn(cpu, "", tensorflow_imported=False)
    assert decided == value and why.startswith(reason)


@pytest.mark.parametrize("user_value", ["0", "false", "1"])
def test_a_value_the_user_set_is_kept_and_named(user_value):
    assert decide_onednn(ZEN3, user_value, tensorflow_imported=False) == (
        None, f"TF_ENABLE_ONEDNN_OPTS={user_value} set by the user")


def test_too_late_once_tensorflow_is_imported():
    value, why = decide_onednn(ZEN3, "", tensorflow_imported=True)
    assert value is None and "imported before" in why


def test_this_machine_is_read_and_tensorflow_reports_what_it_resolved():
    cpu = this_cpu()
    assert cpu.model and cpu.architecture
    assert set(cpu.vector_extensions) <= cpu.flags and cpu.bfloat16_units <= cpu.flags
    on, why = onednn_setting()
    assert isinstance(on, bool) and why


XEON_AMX = Cpu("Intel(R) Xeon(R) Processor", "x86_64",
               frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16"}))


@pytest.mark.parametrize("cap, extensions, bfloat16_units", [
    ("", ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"], {"avx512_bf16", "amx_bf16"}),
    ("AVX2", ["avx2", "fma"], set()),
    ("avx", [], set()),  # oneDNN reads the value in any case
    ("AVX512_CORE_BF16", ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16"], {"avx512_bf16"}),
    ("AVX512_CORE_AMX", ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"],
     {"avx512_bf16", "amx_bf16"}),  # an alias oneDNN still takes
    ("AVX3000", ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"],
     {"avx512_bf16", "amx_bf16"}),  # oneDNN ignores a value it does not know
])
def test_onednn_max_cpu_isa_hides_what_the_kernels_may_not_use(cap, extensions, bfloat16_units):
    cpu = dataclasses.replace(XEON_AMX, isa_cap=cap)
    assert cpu.vector_extensions == extensions and cpu.bfloat16_units == bfloat16_units
    hidden = [name for name in XEON_AMX.vector_extensions if name not in extensions]
    assert cpu.describe().endswith(f"ONEDNN_MAX_CPU_ISA={cap} hides {', '.join(hidden)})" if hidden else
                                   f"{', '.join(extensions) or 'no AVX2'})")


def test_an_avx2_cap_makes_an_avx512_cpu_choose_as_an_avx2_one(monkeypatch):
    from zoo.training import compile as compile_module

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    this_cpu.cache_clear()
    try:
        capped = this_cpu()
    finally:
        this_cpu.cache_clear()
    assert capped.isa_cap == "AVX2" and not capped.bfloat16_units
    # TensorFlow decides oneDNN by the hardware: the cap changes the kernels, not that decision.
    assert decide_onednn(dataclasses.replace(XEON_AMX, isa_cap="AVX2"), "", False)[1].startswith(
        "TensorFlow's default on a CPU with amx_bf16")
    monkeypatch.setattr(compile_module, "this_cpu", lambda: dataclasses.replace(XEON_AMX, isa_cap="AVX2"))
    assert compile_module.resolve_precision("auto") == (
        "float32", "auto: ONEDNN_MAX_CPU_ISA=AVX2 keeps the kernels off the CPU's bfloat16 hardware")
    monkeypatch.setattr(compile_module, "this_cpu", lambda: XEON_AMX)
    assert compile_module.resolve_precision("auto")[0] == "mixed_bfloat16"


@pytest.mark.parametrize("cpu, refused", [
    (dataclasses.replace(XEON_AMX, isa_cap="AVX2"), True),  # TensorFlow would hand oneDNN bfloat16 it cannot run
    (dataclasses.replace(XEON_AMX, isa_cap="AVX512_CORE"), False),  # oneDNN emulates bfloat16 on AVX-512
    (ZEN3, False),  # no AVX-512: TensorFlow keeps bfloat16 on its own kernels
])
def test_mixed_bfloat16_is_refused_in_one_line_only_where_onednn_would_fail_on_it(monkeypatch, cpu, refused):
    from zoo.common.errors import ConfigError
    from zoo.training import compile as compile_module

    monkeypatch.setattr(compile_module, "this_cpu", lambda: cpu)
    monkeypatch.setattr(compile_module, "onednn_setting", lambda: (True, "on"))
    if not refused:
        assert compile_module.resolve_precision("mixed_bfloat16") == ("mixed_bfloat16", "mixed_bfloat16")
        return
    with pytest.raises(ConfigError, match=r"^train.precision: ONEDNN_MAX_CPU_ISA=AVX2 leaves .* received mixed_bfloat16$"):
        compile_module.resolve_precision("mixed_bfloat16")
    assert compile_module.resolve_precision("float32") == ("float32", "float32")
