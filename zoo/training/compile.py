"""Compiling a model for training: optimizer (with its weight average and decay exclusions), learning-rate
schedule, loss, metrics, XLA and precision.

`auto` settings resolve to what measured fastest on the device at hand (benchmarks/README.md);
each comes back with the reason, which the run prints and records in summary.json.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from zoo.common.cpu import ISA_CAP_VARIABLE, onednn_setting, this_cpu
from zoo.common.errors import ConfigError, few
from zoo.experiment import OptimizerConfig, TrainConfig
from zoo.training.schedules import WarmupSchedule


def resolve_xla(setting: str, distribute: str = "none") -> tuple[bool, str]:
    """train.xla -> (jit_compile, why). `auto` turns XLA on only where it is faster: with a GPU.

    Under a tf.distribute strategy it is off whatever the setting: Keras's `fit` ignores
    jit_compile there, and the multi-worker step's all-reduce runs outside XLA.
    """
    if distribute != "none":
        return False, f"off under train.distribute: {distribute} (Keras compiles no XLA under a tf.distribute strategy)"
    if setting != "auto":
        return setting == "on", setting
    if tf.config.list_physical_devices("GPU"):
        return True, "auto: GPU found (XLA is the usual win there; not measured on this project's machines yet)"
    return False, "auto: no GPU, and XLA measured slower on CPU (0.38-0.60x, benchmarks/README.md)"


def resolve_precision(setting: str) -> tuple[str, str]:
    """train.precision -> (Keras dtype policy, why). `auto` takes bfloat16 where the CPU computes it natively.

    Measured here (benchmarks/README.md), on a CPU with AVX512_BF16 and no AMX: mixed_bfloat16's
    training step is 1.31-1.50x as fast as float32's for ResNet-20 (since batch norm takes bfloat16
    directly; 1.33-1.35x before) and 1.09-1.32x for LeNet-5, and the accuracy holds (ResNet-20
    91.52% in the hour-long run, level with float32's training accuracy by epoch 10; LeNet-5 99.10%
    mean over 3 seeds against 99.18%). AMX multiplies bf16 matrices in hardware (not measured
    here). Without either, auto keeps float32.
    """
    cpu = this_cpu()
    if setting == "mixed_bfloat16" and cpu.avx512_capped and onednn_setting()[0]:
        raise ConfigError(f"{ISA_CAP_VARIABLE}={cpu.isa_cap} leaves TensorFlow's oneDNN kernels no bfloat16 "
                          "convolution on this AVX-512 CPU (TensorFlow sends them bfloat16 all the same); expected "
                          f"float32 or auto, or the variable unset, received {setting}", key="train.precision")
    if setting != "auto":
        return setting, setting
    if tf.config.list_physical_devices("GPU"):
        return "float32", "auto: GPU found; mixed precision on GPUs is not measured here yet"
    units = cpu.bfloat16_units
    if "amx_bf16" in units:
        return "mixed_bfloat16", "auto: the CPU has AMX, which multiplies bfloat16 matrices in hardware"
    if units:
        return "mixed_bfloat16", ("auto: the CPU has AVX512_BF16; mixed_bfloat16 trained 1.09-1.50x as fast as "
                                  "float32 on one (benchmarks/README.md)")
    if cpu.bfloat16_units_capped:
        return "float32", f"auto: {ISA_CAP_VARIABLE}={cpu.isa_cap} keeps the kernels off the CPU's bfloat16 hardware"
    return "float32", "auto: the CPU has no bfloat16 hardware"


AUTO_STEPS_PER_EXECUTION = 16  # the most steps auto runs per call; see resolve_steps_per_execution


def resolve_steps_per_execution(setting: str | int, steps_per_epoch: int, distribute: str = "none") -> tuple[int, str]:
    """train.steps_per_execution -> (training steps per call into TensorFlow, why).

    Each call from Keras's loop into the compiled step costs a fixed overhead in Python and in
    TensorFlow's function dispatch, which for a small model like LeNet-5 is a large share of its
    step; running several steps per call (in a tf.while_loop) pays it once for all of them. The
    callbacks then see every N-th batch. N divides the epoch's steps: Keras would otherwise run the
    last call past the epoch's end, and the schedule and a resumed run's batches would shift.
    """
    if distribute == "multi_worker":
        return 1, "1 under multi_worker (the zoo's own strategy.run loop takes one step per call)"
    if distribute != "none":
        # Keras 3.15's several-steps loop fails under MirroredStrategy ("You must feed a value for
        # placeholder tensor ..." in multi_step_on_iterator, seen with two logical CPUs).
        if setting not in ("auto", 1):
            raise ConfigError(f"expected auto or 1 under train.distribute: {distribute} (Keras's several-steps "
                              f"loop fails under MirroredStrategy), received {setting}",
                              key="train.steps_per_execution")
        return 1, f"1 under train.distribute: {distribute} (Keras's several-steps loop fails under MirroredStrategy)"
    divisors = [n for n in range(1, steps_per_epoch + 1) if steps_per_epoch % n == 0]
    if setting == "auto":
        steps = max(n for n in divisors if n <= AUTO_STEPS_PER_EXECUTION)
        return steps, (f"auto: the largest divisor of the epoch's {steps_per_epoch} steps up to "
                       f"{AUTO_STEPS_PER_EXECUTION}")
    if steps_per_epoch % setting:
        raise ConfigError(f"expected a divisor of the epoch's {steps_per_epoch} steps (one of "
                          f"{few(divisors, 12)}), "
                          f"received {setting}", key="train.steps_per_execution")
    return setting, str(setting)


# Biases and batch norm's scale and offset, by name: Keras's own ("bias"), or TensorFlow's ("conv1/bias:0"),
# which the update sees for a restored optimizer's variables.
NORM_AND_BIAS = (r"(^|/)(bias|gamma|beta)(:\d+)?$",)


def make_optimizer(config: OptimizerConfig, schedule: WarmupSchedule,
                   ema_momentum: float | None = None) -> keras.optimizers.Optimizer:
    """The optimizer; with `ema_momentum`, Keras's own exponential moving average of the weights."""
    weight_decay = config.weight_decay or None
    ema = {"use_ema": ema_momentum is not None, "ema_momentum": ema_momentum or 0.99}
    if config.name == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=config.nesterov,
                                         weight_decay=weight_decay, **ema)
    elif config.name == "adam":
        optimizer = keras.optimizers.Adam(schedule, weight_decay=weight_decay, **ema)
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **ema)
    if not config.decay_norm_and_bias:
        exclude_norm_and_bias(optimizer)
    return optimizer


def exclude_norm_and_bias(optimizer: keras.optimizers.Optimizer) -> None:
    """No weight decay on biases and batch norm's gamma and beta (torchvision's `--norm-weight-decay 0`).

    The exclusion is not part of an optimizer's saved config, so a resumed run sets it again on the
    optimizer its checkpoint restored (it is read when the update is traced, after this). Keras's
    documentation asks for the call before the optimizer is built, but 3.15's check reads an attribute
    it never sets, and a test resumes a run to hold the behaviour.
    """
    optimizer.exclude_from_weight_decay(var_names=list(NORM_AND_BIAS))


def make_schedule(config: TrainConfig, steps_per_epoch: int) -> WarmupSchedule:
    s = config.schedule
    return WarmupSchedule(s.name, config.optimizer.learning_rate, config.epochs * steps_per_epoch,
                          warmup_steps=int(s.warmup_epochs * steps_per_epoch),
                          boundaries=tuple(m * steps_per_epoch for m in s.milestones), gamma=s.gamma)


def make_loss(config: TrainConfig, reduction: str | None = "sum_over_batch_size") -> keras.losses.Loss:
    """The training loss; reduction None gives per-example losses, which a tf.distribute step averages."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing, reduction=reduction)


def training_metrics() -> list[keras.metrics.Metric]:
    return [keras.metrics.CategoricalAccuracy(name="accuracy"), keras.metrics.TopKCategoricalAccuracy(k=5, name="top5")]


def build_optimizer(model: keras.Model) -> None:
    """Creates the optimizer's variables now (under the strategy's scope), not in the traced step."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def build_training_state(model: keras.Model) -> None:
    """Creates the compiled metrics' and the optimizer's variables now, before `fit` traces the step.

    Without a tf.distribute strategy Keras creates them while tracing the first training step, and
    tf.function traces a function that created variables a second time. Building them here saves that
    trace: a 12-step ResNet-20 run on CIFAR-10 took 15.2-16.7 s instead of 19.9-22.2 s (Intel Xeon AMX).
    `fit` resets the metrics before each epoch, so the zeros they see here count nowhere. Call it under
    the strategy's scope.
    """
    build_optimizer(model)
    outputs = keras.ops.zeros((1, *model.outputs[0].shape[1:]))  # the zoo's models have one output
    model.compute_metrics(None, outputs, outputs)  # Keras's ignores its inputs


def compile_model(model: keras.Model, config: TrainConfig, steps_per_epoch: int, xla: bool,
                  steps_per_execution: int = 1) -> None:
    model.compile(
        optimizer=make_optimizer(config.optimizer, make_schedule(config, steps_per_epoch), config.ema_momentum),
        loss=make_loss(config),
        metrics=training_metrics(),
        jit_compile=xla,
        steps_per_execution=steps_per_execution,
    )
