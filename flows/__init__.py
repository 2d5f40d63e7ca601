"""Prefect flows: thin, typed shells over the genai library."""
