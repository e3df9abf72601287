"""Standard DICOM objects derived from one radiograph's BLS-GAN results (built with highdicom).

One module per object: ``segmentation`` (SEG of the bones on the source grid),
``secondary_capture`` (layer images and the overview), ``structured_report`` (TID 1500
measurements), plus ``model`` (the results the worker hands over), ``uids`` (deterministic
UIDs), ``codes`` and ``source`` (what is carried over from the source), and ``write``
(all outputs of one radiograph to a folder).
"""
