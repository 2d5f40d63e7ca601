"""Loss-independent quality metrics, the domain feature network, and run evaluation."""
