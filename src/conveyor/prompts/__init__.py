"""Default prompts of the judgment roles, shipped as package data: ``<role>.prompt.md`` per AgentRole value.

A target repository overrides any of them with ``automations/prompts/agents/<role>.prompt.md``
(see :mod:`conveyor.adapters.agents.prompts`).
"""
