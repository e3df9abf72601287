"""Bone segmentation of joint crops: upper (proximal phalanx) and lower (metacarpal) masks."""

from blsgan_core.segment.model import Segmenter, SegmenterConfig, load_segmenter
from blsgan_core.segment.predict import segment, segment_masks

__all__ = ["Segmenter", "SegmenterConfig", "load_segmenter", "segment", "segment_masks"]
