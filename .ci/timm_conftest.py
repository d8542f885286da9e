"""Imports vader_hub before timm's test_models.py is collected, so its model lists include vader_*."""
import vader_hub  # noqa: F401
