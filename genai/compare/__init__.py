"""genai compare: every family and loss on one data, at one budget, over seeds, with a verdict."""
