"""Bone segmentation of joint crops: upper (proximal phalanx) and lower (metacarpal) masks."""

from blsgan_core.segment.model import Segmenter, SegmenterConfig, load_segmenter
from blsgan_core.segment.predict import NodeMasks, node_masks, segment, segment_masks

__all__ = [
    "NodeMasks",
    "Segmenter",
    "SegmenterConfig",
    "load_segmenter",
    "node_masks",
    "segment",
    "segment_masks",
]
