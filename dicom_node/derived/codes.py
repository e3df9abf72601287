"""The coded concepts of the derived objects, in one place so SEG and SR say the same thing.

Standard codes (SNOMED CT "SCT", DICOM "DCM", UCUM) are used wherever a concept exists.
Four things have no standard concept: the base of the proximal phalanx as a segment
type, the projected overlap of two bones, BLS-GAN's own numbers (correction k,
reconstruction error), and the joint space width with its overlap depth (neither
SNOMED CT nor DICOM's DCM codes name a radiographic joint space width). They get codes
of a private coding scheme, ``99BLSGAN`` (PS3.16 section 8: designators starting with
"99" are private), which every object using them identifies in its Coding Scheme
Identification Sequence.

Joints are post-coordinated: "Metacarpophalangeal joint" plus the digit plus laterality,
the same way for all five joints, so a query for MCP joints finds every one of them.
"""

from __future__ import annotations

from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from dicom_node.derived.model import Joint, LengthUnit, Side, SpacingSource

PRIVATE_SCHEME = "99BLSGAN"


def private_scheme_item() -> CodingSchemeIdentificationItem:
    """A new Coding Scheme Identification item for ``99BLSGAN`` (datasets are mutable)."""
    return CodingSchemeIdentificationItem(
        designator=PRIVATE_SCHEME,
        name="blsgan-node local codes",
        responsible_organization="blsgan-node",
    )


# Segmented property categories (CID 7150).
ANATOMICAL_STRUCTURE = codes.SCT.AnatomicalStructure  # 91723000
SPATIAL_AND_RELATIONAL_CONCEPT = codes.SCT.SpatialAndRelationalConcept  # 309825002

# Segmented property types.
METACARPAL = codes.SCT.Metacarpal  # 36455000, the lower bone (metacarpal head)
PROXIMAL_PHALANX_BASE = Code("BLS001", PRIVATE_SCHEME, "Base of proximal phalanx")
BONE_OVERLAP = Code(
    "BLS002", PRIVATE_SCHEME, "Projected overlap of phalanx base and metacarpal head"
)

# Anatomy.
HAND = codes.SCT.Hand  # 85562004
METACARPOPHALANGEAL_JOINT = Code("70420003", "SCT", "Metacarpophalangeal joint")
DIGITS: dict[Joint, Code] = {
    Joint.MCP1: codes.SCT.Thumb,  # 76505004
    Joint.MCP2: Code("83738005", "SCT", "Index finger"),
    Joint.MCP3: Code("65531009", "SCT", "Middle finger"),
    Joint.MCP4: Code("82002001", "SCT", "Ring finger"),
    Joint.MCP5: Code("12406000", "SCT", "Little finger"),
}
LATERALITY: dict[Side, Code] = {
    Side.LEFT: codes.SCT.Left,  # 7771000
    Side.RIGHT: codes.SCT.Right,  # 24028007
}

# Algorithm family (CID 7162).
ARTIFICIAL_INTELLIGENCE = codes.DCM.ArtificialIntelligence  # 123110

# Structured report.
IMAGING_PROCEDURE = codes.SCT.ImagingProcedure  # 363679005, CID 100
AREA = codes.SCT.Area  # 42798000
CORRECTION_K = Code("BLS010", PRIVATE_SCHEME, "Soft tissue transmittance k")
RECONSTRUCTION_MSE = Code("BLS011", PRIVATE_SCHEME, "Reconstruction mean squared error")
RECONSTRUCTION_SSIM = Code("BLS012", PRIVATE_SCHEME, "Reconstruction structural similarity")
RECONSTRUCTION_PSNR = Code("BLS013", PRIVATE_SCHEME, "Reconstruction peak signal-to-noise ratio")

# Joint space along the finger axis: one concept, min and mean as its derivation
# (CID 7464), the pixel scale it rests on as its method.
JOINT_SPACE_WIDTH = Code("BLS020", PRIVATE_SCHEME, "Joint space width")
OVERLAP_DEPTH = Code("BLS021", PRIVATE_SCHEME, "Bone overlap depth along the finger axis")
JSW_CHANGE = Code("BLS022", PRIVATE_SCHEME, "Change in joint space width since prior")
JSW_CHANGE_RATE = Code("BLS023", PRIVATE_SCHEME, "Rate of change in joint space width")
# Method of a change found by registering each bone's prior layer onto its layer now.
LAYER_REGISTRATION = Code(
    "BLS033", PRIVATE_SCHEME, "Registration of the separated bone layers to the prior"
)
MINIMUM = codes.SCT.Minimum  # 255605001
MEAN = codes.SCT.Mean  # 373098007
SCALE_METHODS: dict[SpacingSource, Code] = {
    SpacingSource.PIXEL_SPACING: Code(
        "BLS030", PRIVATE_SCHEME, "Along finger axis, Pixel Spacing at the patient"
    ),
    SpacingSource.IMAGER_PIXEL_SPACING: Code(
        "BLS031", PRIVATE_SCHEME, "Along finger axis, detector scale, magnification uncorrected"
    ),
    SpacingSource.NONE: Code("BLS032", PRIVATE_SCHEME, "Along finger axis, source pixels"),
}

# Units (UCUM). "{pixels}" is a UCUM annotation of unity: a count of pixels.
SQUARE_MILLIMETER = codes.UCUM.SquareMillimeter  # mm2
PIXELS = Code("{pixels}", "UCUM", "pixels")
NO_UNITS = codes.UCUM.NoUnits  # 1
DECIBEL = Code("dB", "UCUM", "decibel")
MILLIMETER = codes.UCUM.Millimeter  # mm
LENGTH_UNITS: dict[LengthUnit, Code] = {
    LengthUnit.MILLIMETER: MILLIMETER,
    LengthUnit.PIXELS: PIXELS,
}
# UCUM "a" is the Julian year (365.25 days), the year the rates are computed with.
RATE_UNITS: dict[LengthUnit, Code] = {
    LengthUnit.MILLIMETER: Code("mm/a", "UCUM", "millimeter per year"),
    LengthUnit.PIXELS: Code("{pixels}/a", "UCUM", "pixels per year"),
}
