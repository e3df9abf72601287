"""The worker: Celery tasks gluing ``dicom_node`` to ``blsgan_core``.

Importing the package sets torch's OpenMP threads to wait passively (``worker.openmp``)
before any of its modules imports torch; ``TORCH_LOADED_FIRST`` records whether torch was
already loaded (then the policy comes too late for this process).
"""

import sys

from worker.openmp import prefer_passive_waiting

TORCH_LOADED_FIRST = "torch" in sys.modules
prefer_passive_waiting()
