"""madutils: self-consuming generative loops, models and metrics for reproducing
"Self-Consuming Generative Models Go MAD" (Alemohammad et al., ICLR 2024).

Importing madutils tunes glibc's allocator for CPU torch (see :mod:`madutils.allocator`; set
``MADUTILS_MALLOC_TUNING=0`` to opt out).
"""

from madutils.allocator import tune_glibc_malloc

__version__ = "0.1.0"

tune_glibc_malloc()
