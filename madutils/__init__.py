"""madutils: self-consuming generative loops, models and metrics for reproducing
"Self-Consuming Generative Models Go MAD" (Alemohammad et al., ICLR 2024)."""

__version__ = "0.1.0"
