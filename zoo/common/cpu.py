"""The CPU the zoo runs on, and the TensorFlow setting that follows from it: oneDNN.

TensorFlow 2.21's Linux x86-64 build turns its oneDNN kernels on by default only on CPUs with
AVX-512 VNNI, AVX512_BF16, AVX-VNNI or AMX. On an AVX2-only CPU (AMD EPYC Zen 3, 2 cores) they
doubled the zoo's training speed (issue 20: ResNet-20's step 132 -> 243-264 images/s, LeNet-5's
2,743 -> 5,781-6,994), so `configure_onednn`, called when the `zoo` package is imported and so
before TensorFlow is, sets TF_ENABLE_ONEDNN_OPTS=1 on x86-64 CPUs with AVX2, unless the user set
the variable. Elsewhere TensorFlow's own default stands: nothing was measured there. Run records
what TensorFlow resolved, with the reason (`onednn_setting`).

oneDNN's ONEDNN_MAX_CPU_ISA caps the instructions its kernels may use (TensorFlow's and PyTorch's
alike); `this_cpu` reads it, so a capped CPU is described, and chooses its precision, as the CPU the
kernels see: `ONEDNN_MAX_CPU_ISA=AVX2` on an AVX-512 machine keeps float32 and leaves the bench's
bfloat16 rows out, as an AVX2-only CPU would.
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
ISA_CAP_VARIABLE = "ONEDNN_MAX_CPU_ISA"
# oneDNN's ISA levels in its order, lowest first, each with the /proc/cpuinfo flags it adds to those
# below it; a cap hides the flags of every level above it. oneDNN ignores a value it does not know.
ONEDNN_ISA_LEVELS = (
    ("SSE41", ()), ("AVX", ()), ("AVX2", ("avx2", "fma")), ("AVX2_VNNI", ("avx_vnni",)), ("AVX2_VNNI_2", ()),
    ("AVX512_CORE", ("avx512f",)), ("AVX512_CORE_VNNI", ("avx512_vnni",)), ("AVX512_CORE_BF16", ("avx512_bf16",)),
    ("AVX10_1_512", ("avx512_fp16",)), ("AVX10_1_512_AMX", ("amx_tile", "amx_int8", "amx_bf16")),
    ("AVX10_1_512_AMX_FP16", ("amx_fp16",)), ("ALL", ()))
ONEDNN_ISA_ALIASES = {"AVX512_CORE_FP16": "AVX10_1_512", "AVX512_CORE_AMX": "AVX10_1_512_AMX",
                      "AVX512_CORE_AMX_FP16": "AVX10_1_512_AMX_FP16"}


def flags_above(isa_cap: str) -> frozenset[str]:
    """The CPU flags an ONEDNN_MAX_CPU_ISA value keeps oneDNN's kernels from using ('' or unknown: none)."""
    names = [name for name, _ in ONEDNN_ISA_LEVELS]
    cap = ONEDNN_ISA_ALIASES.get(isa_cap.strip().upper(), isa_cap.strip().upper())
    if cap not in names:
        return frozenset()
    return frozenset(flag for _, added in ONEDNN_ISA_LEVELS[names.index(cap) + 1:] for flag in added)


@dataclasses.dataclass(frozen=True)
class Cpu:
    model: str  # "AMD EPYC 9R14 96-Core Processor"
    architecture: str  # platform.machine(): x86_64, aarch64, ...
    flags: frozenset[str]  # the hardware's, as /proc/cpuinfo lists them
    isa_cap: str = ""  # ONEDNN_MAX_CPU_ISA, if set

    @property
    def kernel_flags(self) -> frozenset[str]:
        """The flags oneDNN's kernels may use: the hardware's, less those above ONEDNN_MAX_CPU_ISA."""
        return self.flags - flags_above(self.isa_cap)

    @property
    def bfloat16_units(self) -> frozenset[str]:
        """The bfloat16 hardware the kernels may use: a subset of {"avx512_bf16", "amx_bf16"}."""
        return self.kernel_flags & set(BFLOAT16_UNITS)

    @property
    def bfloat16_units_capped(self) -> bool:
        """Whether the CPU has bfloat16 units that ONEDNN_MAX_CPU_ISA keeps the kernels from."""
        return bool(self.flags & set(BFLOAT16_UNITS)) and not self.bfloat16_units

    @property
    def avx512_capped(self) -> bool:
        """Whether ONEDNN_MAX_CPU_ISA hides the AVX-512 this CPU has. bfloat16 ops then fail: TensorFlow
        hands them to oneDNN on any CPU with AVX-512 (it reads the hardware, not the cap), and a cap below
        AVX512_CORE leaves oneDNN no kernel for them. On a CPU without AVX-512 TensorFlow keeps them on
        its own (slow) kernels instead."""
        return "avx512f" in self.flags and "avx512f" not in self.kernel_flags

    @property
    def vector_extensions(self) -> list[str]:
        return [name for name in VECTOR_EXTENSIONS if name in self.kernel_flags]

    def describe(self) -> str:
        """'AMD EPYC (x86_64; avx2, fma, avx512f, avx512_bf16)': what a measured figure depends on."""
        hidden = [name for name in VECTOR_EXTENSIONS if name in self.flags - self.kernel_flags]
        capped = f"; {ISA_CAP_VARIABLE}={self.isa_cap} hides {', '.join(hidden)}" if hidden else ""
        return f"{self.model} ({self.architecture}; {', '.join(self.vector_extensions) or 'no AVX2'}{capped})"


@functools.cache
def this_cpu() -> Cpu:
    """This machine's CPU, read from /proc/cpuinfo (Linux; elsewhere its name and no flags), and the
    ONEDNN_MAX_CPU_ISA cap on what its kernels may use."""
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
    return Cpu(model, platform.machine(), flags, os.environ.get(ISA_CAP_VARIABLE, "").strip())


_decision: str = ""  # why TF_ENABLE_ONEDNN_OPTS has its value, set by configure_onednn


def decide_onednn(cpu: Cpu, user_value: str, tensorflow_imported: bool) -> tuple[str | None, str]:
    """(the value to give TF_ENABLE_ONEDNN_OPTS, or None to leave it, why)."""
    if user_value.strip():
        return None, f"{ONEDNN_VARIABLE}={user_value.strip()} set by the user"
    if tensorflow_imported:
        return None, "TensorFlow was imported before the zoo, so its default stands"
    defaults = sorted(cpu.flags & set(TENSORFLOW_ONEDNN_DEFAULT))  # TensorFlow reads the hardware, not the cap
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
