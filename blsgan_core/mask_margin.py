"""Bone masks widened by a margin before the networks see them (a departure, 0 = the paper's).

The node separates with the segmenter's masks, whose outlines are off by a pixel or two.
Where a given mask leaves out bone of its own, ``L = G(J, M) * M`` forces that layer to
0 and no separator can put the bone back: on held-out synthetic overlaps three quarters
of the shipped model's squared error in the true overlap lay on the 2.4 % of layer
pixels a predicted mask left out (docs/training.md, session 20). A mask widened by a
pixel leaves out far less bone; a model trained on widened masks learns to put the soft
tissue where a widened mask holds no bone (:attr:`blsgan_core.model.BLSGANConfig.mask_margin_px`).
One definition for the trainer and the node, so a model meets at inference the masks it
was trained on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def disk(radius_px: int) -> torch.Tensor:
    """``(2r+1, 2r+1)`` ones where the Euclidean distance to the centre is at most ``r``."""
    if isinstance(radius_px, bool) or not isinstance(radius_px, int) or radius_px < 0:
        raise ValueError(f"radius_px must be an integer >= 0, got {radius_px!r}")
    offsets = torch.arange(-radius_px, radius_px + 1, dtype=torch.float32)
    return ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius_px**2).float()


def widen_masks(masks: torch.Tensor, margin_px: int) -> torch.Tensor:
    """``masks`` ``(B, n, H, W)`` (0/1 or booleans) grown by every pixel within ``margin_px``
    (Euclidean) of a mask pixel, each mask on its own; float 0/1 on the masks' device.

    A margin of 0 returns the masks as floats, unchanged.
    """
    if masks.dim() != 4:
        raise ValueError(f"masks must be (B, n, H, W), got {tuple(masks.shape)}")
    kernel = disk(margin_px)  # also refuses a margin that is not an integer >= 0
    masks = masks.float()
    if margin_px == 0:
        return masks
    batch, count, height, width = masks.shape
    flat = masks.reshape(batch * count, 1, height, width)
    grown = F.conv2d(flat, kernel.to(masks.device)[None, None], padding=margin_px) > 0.5
    return grown.reshape(batch, count, height, width).float()
