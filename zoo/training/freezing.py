"""Freezing part of a model for fine-tuning: `train.freeze` and `train.freeze_epochs`.

`train.freeze: LAYER` freezes that config layer and every layer before it; `all_but_head` freezes
everything but the classifier (a linear probe). With `train.freeze_epochs: N` they are frozen for
the first N epochs only, then everything trains on with a new optimizer whose step count, and so
the learning-rate schedule, continues where it was (the head's momentum starts again).

A frozen layer is Keras's `trainable = False`: its weights get no updates, and its batch
normalisation runs in inference mode, normalising with its moving statistics and never updating
them, which is what keeps a frozen backbone's statistics intact (the problem keras-team/keras
PR #9965 describes). The flags are saved in every checkpoint, and a resumed run sets them for the phase
its next epoch is in.
"""
from __future__ import annotations

import keras

from zoo.common.errors import ConfigError, unknown
from zoo.models.config import ModelConfig
from zoo.models.create import head_layers

ALL_BUT_HEAD = "all_but_head"


def check_freeze(setting: str | None, freeze_epochs: int | None, epochs: int, config: ModelConfig,
                 distribute: str) -> None:
    """A did-you-mean for an unknown layer, and freeze_epochs only where it means something."""
    names = [spec.name for spec in config.layers]
    if setting is not None and setting != ALL_BUT_HEAD and setting not in names:
        raise ConfigError(unknown(f"layer of {config.name}", setting, [*names, ALL_BUT_HEAD]), key="train.freeze")
    if setting == names[-1] or (setting == ALL_BUT_HEAD and not head_layers(config)):
        raise ConfigError(f"{setting} would freeze every layer of {config.name} (nothing would train); expected "
                          "a layer before its last", key="train.freeze")
    if freeze_epochs is not None and setting is None:
        raise ConfigError("expected train.freeze (what to freeze for those epochs), received none",
                          key="train.freeze_epochs")
    if freeze_epochs is not None and freeze_epochs >= epochs:
        raise ConfigError(f"expected fewer than train.epochs ({epochs}) frozen epochs (or null: frozen for the "
                          f"whole run), received {freeze_epochs}", key="train.freeze_epochs")
    if freeze_epochs is not None and distribute == "multi_worker":
        raise ConfigError("not available under train.distribute: multi_worker yet (the zoo's own loop cannot "
                          "switch optimizers mid-run); freeze for the whole run instead", key="train.freeze_epochs")


def frozen_layer_names(model: keras.Model, config: ModelConfig, setting: str | None) -> set[str]:
    """The Keras layers `setting` freezes: those of every block up to and including the named config
    layer (a layer belongs to the block whose name it starts with; the longest such name wins), or
    all but the classifier's."""
    if setting is None:
        return set()
    head = head_layers(config)
    if setting == ALL_BUT_HEAD:
        return {layer.name for layer in model.layers if _owner(layer.name, _blocks(config)) not in head}
    upto = [spec.name for spec in config.layers].index(setting)
    frozen_blocks = {name for spec in config.layers[:upto + 1] for name, _ in spec.expand()}
    blocks = _blocks(config)
    return {layer.name for layer in model.layers if _owner(layer.name, blocks) in frozen_blocks}


def _blocks(config: ModelConfig) -> list[str]:
    return [name for spec in config.layers for name, _ in spec.expand()]


def _owner(layer: str, blocks: list[str]) -> str | None:
    owners = [name for name in blocks if layer == name or layer.startswith(f"{name}_")]
    return max(owners, key=len) if owners else None


def frozen_now(epoch: int, setting: str | None, freeze_epochs: int | None) -> bool:
    """Whether the epoch after `epoch` finished ones trains with the layers frozen."""
    return setting is not None and (freeze_epochs is None or epoch < freeze_epochs)


def set_frozen(model: keras.Model, names: set[str]) -> bool:
    """Sets every layer's trainable flag (frozen: the layers in `names`); True if any flag changed."""
    changed = False
    for layer in model.layers:
        trainable = layer.name not in names
        if layer.trainable != trainable:
            layer.trainable, changed = trainable, True
    return changed
