"""Campaign files: schema, loading and effective settings.

``CampaignSettings`` and ``load_campaign`` are imported on first use: the stage settings
(:mod:`ctaflow.campaign.stages`), which the makers import, must load without the campaign schema,
which imports the stage registry and with it the makers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CampaignSettings", "load_campaign"]


def __getattr__(name: str) -> Any:
    if name == "CampaignSettings":
        from ctaflow.campaign.schema import CampaignSettings  # lazy: see the module docstring

        return CampaignSettings
    if name == "load_campaign":
        from ctaflow.campaign.load import load_campaign  # lazy: see the module docstring

        return load_campaign
    raise AttributeError(name)
