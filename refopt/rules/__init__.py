"""The update rules: one module per rule, each a :class:`~refopt.rules._base.Rule` subclass."""
from .adam import Adam, AdamW
from .adams import AdamS
from .adamx import AdamX
from .adax import AdaX
from .alphaadam import AlphaAdam
from .cadamw import CAdamW
from .sgdm import SGDM

__all__ = ["Adam", "AdamW", "AdamS", "AdamX", "AdaX", "AlphaAdam", "CAdamW", "SGDM"]
