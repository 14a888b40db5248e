"""PyTorch ResNet-20, ResNet-56 and LeNet-5 on the CPU, channels_last, fp32 or bf16 autocast: the peer
`make bench` measures the zoo's training (ResNet-20, LeNet-5) and serving (all three) against. Needs
the `bench` extra (torch); imported only when present.
"""
from __future__ import annotations

import os
import time

from zoo.common.cpu import this_cpu


def match_tensorflow_instructions() -> None:
    """Under ONEDNN_MAX_CPU_ISA (an AVX2-only CPU emulated on an AVX-512 one, say) PyTorch's kernels
    must see the instructions TensorFlow's do. Its oneDNN reads that variable itself; ATen's own
    vectorised kernels follow ATEN_CPU_CAPABILITY and MKL's matmuls MKL_ENABLE_INSTRUCTIONS, both
    read once, when torch first runs. Values the user set are kept."""
    cpu = this_cpu()
    if cpu.avx512_capped:
        os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2" if "avx2" in cpu.kernel_flags else "default")
        os.environ.setdefault("MKL_ENABLE_INSTRUCTIONS", "AVX2" if "avx2" in cpu.kernel_flags else "AVX")


match_tensorflow_instructions()
import torch  # noqa: E402
from torch import nn  # noqa: E402


class BasicBlockA(nn.Module):
    """Two 3x3 convolutions with batch norm; option A (subsample, zero channels) shortcut."""

    def __init__(self, inputs: int, filters: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters)
        self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters)
        self.stride, self.extra = stride, filters - inputs

    def forward(self, x):
        skip = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.extra:
            skip = nn.functional.pad(skip, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(skip + self.bn2(self.conv2(y)))


def cifar_resnet(blocks_per_stage: int, classes: int = 10) -> nn.Module:
    """He et al. 2015's CIFAR-10 ResNet with 6n+2 layers, n = `blocks_per_stage`."""
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    inputs = 16
    for filters, first_stride in ((16, 1), (32, 2), (64, 2)):
        for block in range(blocks_per_stage):
            layers.append(BasicBlockA(inputs, filters, first_stride if block == 0 else 1))
            inputs = filters
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def lenet5(classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes))


MODELS = {"resnet20": (lambda: cifar_resnet(3), (3, 32, 32)), "resnet56": (lambda: cifar_resnet(9), (3, 32, 32)),
          "lenet5": (lenet5, (1, 28, 28))}


class TorchTrainer:
    """One model's training step on a fixed in-memory batch; `run(steps)` returns the seconds taken."""

    def __init__(self, model_name: str, batch_size: int, bf16: bool):
        factory, shape = MODELS[model_name]
        torch.manual_seed(0)
        self.model = factory().to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.x = torch.randn(batch_size, *shape).contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (batch_size,))
        self.bf16 = bf16

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = nn.functional.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def run(self, steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - started
