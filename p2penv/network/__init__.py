"""Distribution network models: radial feeders, LinDistFlow and DLMP clearing (spec S4-S6)."""
from .cases import FEEDERS, get_feeder, ieee33, teaching4
from .dlmp import DlmpClearing, DlmpMarket, clear_dlmp
from .feeder import Feeder, from_pandapower
from .lindistflow import LinDistFlowResult, LossModel, linearise_losses, loss_model_at
from .lindistflow import solve as lindistflow

__all__ = [
    "FEEDERS", "DlmpClearing", "DlmpMarket", "Feeder", "LinDistFlowResult", "LossModel", "clear_dlmp",
    "from_pandapower", "get_feeder", "ieee33", "lindistflow", "linearise_losses", "loss_model_at", "teaching4",
]
