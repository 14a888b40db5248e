"""The CPU the zoo runs on, and the TensorFlow setting that follows from it: oneDNN.

TensorFlow 2.21's Linux x86-64 build turns its oneDNN kernels on by default only on CPUs with
AVX-512 VNNI, AVX512_BF16, AVX-VNNI or AMX. On an AVX2-only CPU (AMD EPYC Zen 3, 2 cores) they
doubled the zoo's training speed (issue 20: ResNet-20's step 132 -> 243-264 images/s, LeNet-5's
2,743 -> 5,781-6,994), so `configure_onednn`, called when the `zoo` package is imported and so
before TensorFlow is, sets TF_ENABLE_ONEDNN_OPTS=1 on x86-64 CPUs with AVX2, unless the user set
the variable. Elsewhere TensorFlow's own default stands: nothing was measured there. Run records
what TensorFlow resolved, with the reason (`onednn_setting`).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import platform
import sys
from pathlib import Path

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# The vector and matrix extensions a training step's speed depends on, as /proc/cpuinfo names them.
VECTOR_EXTENSIONS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
BFLOAT16_UNITS = ("avx512_bf16", "amx_bf16")
TENSORFLOW_ONEDNN_DEFAULT = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class Cpu:
    model: str  # "AMD EPYC 9R14 96-Core Processor"
    architecture: str  # platform.machine(): x86_64, aarch64, ...
    flags: frozenset[str]

    @property
    def bfloat16_units(self) -> frozenset[str]:
        """The bfloat16 hardware: a subset of {"avx512_bf16", "amx_bf16"}."""
        return self.flags & set(BFLOAT16_UNITS)

    @property
    def vector_extensions(self) -> list[str]:
        return [name for name in VECTOR_EXTENSIONS if name in self.flags]

    def describe(self) -> str:
        """'AMD EPYC (x86_64; avx2, fma, avx512f, avx512_bf16)': what a measured figure depends on."""
        return f"{self.model} ({self.architecture}; {', '.join(self.vector_extensions) or 'no AVX2'})"


@functools.cache
def this_cpu() -> Cpu:
    """This machine's CPU, read from /proc/cpuinfo (Linux); elsewhere its name and no flags."""
    model, flags = platform.processor() or "unknown CPU", frozenset()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return Cpu(model, platform.machine(), flags)


_decision: str = ""  # why TF_ENABLE_ONEDNN_OPTS has its value, set by configure_onednn


def decide_onednn(cpu: Cpu, user_value: str, tensorflow_imported: bool) -> tuple[str | None, str]:
    """(the value to give TF_ENABLE_ONEDNN_OPTS, or None to leave it, why)."""
    if user_value.strip():
        return None, f"{ONEDNN_VARIABLE}={user_value.strip()} set by the user"
    if tensorflow_imported:
        return None, "TensorFlow was imported before the zoo, so its default stands"
    defaults = sorted(cpu.flags & set(TENSORFLOW_ONEDNN_DEFAULT))
    if defaults:
        return None, f"TensorFlow's default on a CPU with {', '.join(defaults)}"
    if cpu.architecture in ("x86_64", "AMD64") and "avx2" in cpu.flags:
        return "1", ("set by the zoo on this AVX2 CPU, where TensorFlow leaves it off: 1.8-2.5x the training speed "
                     "measured on one (README, 'Speed on your CPU')")
    return None, "TensorFlow's default: the zoo has measured no gain on this CPU kind"


def configure_onednn() -> None:
    """Turns TensorFlow's oneDNN kernels on for AVX2 x86-64 CPUs, where it leaves them off; call it
    before TensorFlow is imported. A value the user set is kept."""
    global _decision
    value, _decision = decide_onednn(this_cpu(), os.environ.get(ONEDNN_VARIABLE, ""), "tensorflow" in sys.modules)
    if value is not None:
        os.environ[ONEDNN_VARIABLE] = value


def onednn_setting() -> tuple[bool, str]:
    """(whether TensorFlow runs its oneDNN kernels, why), as the run records it in summary.json."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled()), _decision or "TensorFlow's default"
