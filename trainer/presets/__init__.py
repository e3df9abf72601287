"""Training presets as TOML data files (``paper``, ``cpu``, ``tiny``); see :mod:`trainer.config`."""
