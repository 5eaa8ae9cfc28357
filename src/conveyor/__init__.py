"""Conveyor: autonomous software delivery on Prefect 3.

The core library. Layers (ARCHITECTURE.md §1): ``domain`` (pure) ← ``ports`` ← ``adapters`` ←
``services`` ← ``cli``; the Prefect layer lives in the top-level packages ``flows``, ``tasks``,
``blocks``, ``deployments`` and ``automations``.
"""

__version__ = "0.0.1"
