"""``blsnode import-image IMAGE --out FILE.dcm``: a hand image file as a DX radiograph."""

from __future__ import annotations

from pathlib import Path

import click

from blsnode.cli.context import exit_on_value_error
from dicom_node.image_import import LATERALITIES, ImportedPatient, dx_from_image, read_grey8


@click.command("import-image")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The DICOM file to write.",
)
@click.option("--patient-id", default="IMPORTED", show_default=True, help="Patient ID.")
@click.option("--patient-name", default="", help="Patient's name (DICOM PN, e.g. Doe^Jane).")
@click.option(
    "--laterality",
    type=click.Choice(LATERALITIES),
    default="L",
    show_default=True,
    help="Which hand: L, R, or B for both hands in one image.",
)
@click.option(
    "--pixel-spacing",
    type=float,
    help="Detector pixel size in mm (Imager Pixel Spacing); omit when unknown.",
)
def import_image(
    image: Path,
    out: Path,
    patient_id: str,
    patient_name: str,
    laterality: str,
    pixel_spacing: float | None,
) -> None:
    """Wrap IMAGE (PNG or JPEG of a hand, bone bright) as a DX hand PA radiograph.

    The file gets new UIDs and can be sent to the node with any C-STORE client, e.g.
    'python -m pynetdicom storescu localhost 11112 FILE -aec BLSNODE'.
    """
    with exit_on_value_error():
        patient = ImportedPatient(patient_id, patient_name, laterality)
        dataset = dx_from_image(read_grey8(image), patient, pixel_spacing)
    out.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(out, enforce_file_format=True)
    click.echo(f"wrote {out} (SOP Instance UID {dataset.SOPInstanceUID})")
