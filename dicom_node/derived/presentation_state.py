"""A Grayscale Softcopy Presentation State that draws the results on the radiograph itself.

Viewers that show few derived objects (a SEG on a DX image, SR numbers without image
coordinates) nearly all apply a GSPS: selecting it shows the source radiograph with, per
joint, the outline of the proximal phalanx base (red layer), of the metacarpal head (blue
layer), of their overlap (yellow layer, only where there is one) and a short label
(``MCP2 L``, with the overlap area when there is one). Outlines are closed polylines in
image pixel coordinates, traced on the source grid where the masks lie.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from dicom_node.derived.equipment import equipment
from dicom_node.derived.model import JointResult, RadiographResult, Side
from dicom_node.derived.outlines import mask_outlines
from dicom_node.derived.overview import overlap_text
from dicom_node.derived.segmentation import DISPLAY_COLOURS, BonePart
from dicom_node.derived.source import check_source_grid, source_laterality
from dicom_node.derived.uids import OutputUids
from dicom_node.pixels import pixel_spacing
from dicom_node.settings import OutputSettings

CONTENT_LABEL = "BLSGAN_OUTLINES"
_LAYERS = {
    BonePart.UPPER: ("PHALANX", "Outline of the proximal phalanx base"),
    BonePart.LOWER: ("METACARPAL", "Outline of the metacarpal head"),
    BonePart.OVERLAP: ("OVERLAP", "Outline of the projected overlap of the two bones"),
}
_LABEL_LAYER = ("LABELS", "Joint labels")
_WHITE = (255, 255, 255)


def _mask(joint: JointResult, part: BonePart) -> np.ndarray:
    if part is BonePart.UPPER:
        return joint.upper_mask
    if part is BonePart.LOWER:
        return joint.lower_mask
    return joint.overlap_mask


def _layer(
    name: str, order: int, description: str, rgb: tuple[int, int, int]
) -> hd.pr.GraphicLayer:
    return hd.pr.GraphicLayer(
        layer_name=name,
        order=order,
        description=description,
        display_color=hd.color.CIELabColor.from_rgb(*rgb),
    )


def _label(
    side: Side, joint: JointResult, spacing: tuple[float, float] | None
) -> hd.pr.TextObject | None:
    """``MCP2 L`` beside the joint (left of its bones), with the overlap if there is one."""
    rows, columns = joint.window
    if rows.start == rows.stop:
        return None
    top, bottom, left = rows.start, rows.stop - 1, columns.start
    text = f"{joint.joint} {side}"
    if joint.overlap_area_px:
        text += f" {overlap_text(joint, spacing)}"
    anchor = (float(left) + 0.5, (top + bottom) / 2 + 0.5)
    return hd.pr.TextObject(
        text_value=text[:64],
        units=hd.pr.AnnotationUnitsValues.PIXEL,
        anchor_point=anchor,
        anchor_point_visible=False,
        text_justification=hd.pr.TextJustificationValues.RIGHT,
    )


def build_presentation_state(
    source: Dataset, result: RadiographResult, outputs: OutputSettings, uids: OutputUids
) -> hd.pr.GrayscaleSoftcopyPresentationState:
    """The GSPS of ``result`` on ``source`` (same study, references the source image).

    Raises
    ------
    ValueError
        The masks do not lie on the source's grid, or ``uids`` belong to another source.
    """
    check_source_grid(source, result.grid_shape, uids)
    spacing, _ = pixel_spacing(source)
    layers = {
        part: _layer(name, order, description, DISPLAY_COLOURS[part])
        for order, (part, (name, description)) in enumerate(_LAYERS.items(), start=1)
    }
    label_layer = _layer(*_LABEL_LAYER[:1], len(layers) + 1, _LABEL_LAYER[1], _WHITE)
    annotations: list[hd.pr.GraphicAnnotation] = []
    for part, layer in layers.items():
        objects = [
            hd.pr.GraphicObject(
                graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
                graphic_data=outline,
                units=hd.pr.AnnotationUnitsValues.PIXEL,
                tracking_id=f"{joint.joint} {side} {part}",
                tracking_uid=uids.tracking(side, joint.joint, str(part)),
            )
            for side, joint in result.joints()
            for outline in mask_outlines(_mask(joint, part), joint.window)
        ]
        if objects:
            annotations.append(_annotation(source, layer, graphic_objects=objects))
    labels = [
        label
        for side, joint in result.joints()
        if (label := _label(side, joint, spacing)) is not None
    ]
    if labels:
        annotations.append(_annotation(source, label_layer, text_objects=labels))
    used = {annotation.GraphicLayer for annotation in annotations}
    state = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[source],
        series_instance_uid=uids.pr_series,
        series_number=outputs.pr_series_number,
        sop_instance_uid=uids.pr_instance,
        instance_number=1,
        **equipment(outputs, result.model),
        content_label=CONTENT_LABEL,
        content_description=f"MCP bone outlines by {result.model.name}"[:64],
        graphic_annotations=annotations,
        graphic_layers=[
            layer for layer in [*layers.values(), label_layer] if layer.GraphicLayer in used
        ],
        series_description=outputs.pr_series_description,
    )
    if source.get("BodyPartExamined"):
        state.BodyPartExamined = source.BodyPartExamined
    # Series Laterality (2C for a paired part; no General Image module here to carry Image
    # Laterality): L or R for one hand, empty for both (it has no value for both sides).
    laterality = source_laterality(source)
    state.Laterality = laterality if laterality in ("L", "R") else ""
    return state


def _annotation(
    source: Dataset,
    layer: hd.pr.GraphicLayer,
    graphic_objects: Sequence[hd.pr.GraphicObject] | None = None,
    text_objects: Sequence[hd.pr.TextObject] | None = None,
) -> hd.pr.GraphicAnnotation:
    return hd.pr.GraphicAnnotation(
        referenced_images=[source],
        graphic_layer=layer,
        graphic_objects=graphic_objects,
        text_objects=text_objects,
    )
