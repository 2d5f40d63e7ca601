"""genai-pipelines: train, sweep and judge generative models and their losses."""

__version__ = "0.1.0"
