"""The seam steps a BLS-GAN model may apply to its layers (``BLSGANConfig.boundary_blend``).

Kept apart from :mod:`blsgan_core.seams` so that command-line options can list them
without importing torch.
"""

#: No seam step; the Poisson blend of each layer; the exchange between the two layers;
#: the layers made to meet Eq. 1 inside the overlap, then the exchange; the exchange by
#: the field found on those projected layers, applied to the generator's own; that
#: field's mean over the overlap instead.
BLEND_MODES = ("off", "poisson", "exchange", "eq1-exchange", "eq1-split", "eq1-offset")
