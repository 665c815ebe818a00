"""Configuration: the schema (model), reading the file (load)."""

from gateway.config.load import load_config, parse_config
from gateway.config.model import Config

__all__ = ["Config", "load_config", "parse_config"]
