"""Data sources, preparation on Ray Data, and reading prepared datasets back."""
