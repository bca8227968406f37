"""Campaign files: schema, loading and effective settings."""

from ctaflow.campaign.load import load_campaign
from ctaflow.campaign.schema import CampaignSettings

__all__ = ["CampaignSettings", "load_campaign"]
