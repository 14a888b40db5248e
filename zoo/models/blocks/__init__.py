"""The shared block library. Importing it registers every block type (see registry.py)."""
from zoo.models.blocks import conv, head, inception, pool, residual  # noqa: F401  (registration)
from zoo.models.blocks.registry import BLOCKS, BlockType, block_type, register_block

__all__ = ["BLOCKS", "BlockType", "block_type", "register_block"]
