"""The CPU reading and the oneDNN decision it drives (zoo.common.cpu)."""
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
