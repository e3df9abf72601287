"""``python -m blsnode``: the same as the ``blsnode`` console script (used by ``serve``)."""

from blsnode.cli.main import main

main()
