"""A real Orthanc accepts every derived object and files it in the source's study."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_factory import write_dataset
from orthanc_server import running_orthanc
from pydicom.dataset import Dataset

from dicom_node.derived.model import RadiographResult
from dicom_node.derived.write import OutputKind, write_outputs
from dicom_node.settings import OutputSettings


@pytest.mark.e2e
def test_orthanc_accepts_all_outputs_into_the_source_study(
    dx_both: Dataset, result_both: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    source = write_dataset(dx_both, tmp_path / "source.dcm")
    written = write_outputs(dx_both, result_both, outputs, tmp_path / "out")
    with running_orthanc(tmp_path / "orthanc") as orthanc:
        stored_source = orthanc.upload(source)
        assert stored_source["Status"] == "Success"
        study_id = stored_source["ParentStudy"]
        for item in written:
            answer = orthanc.upload(item.path)
            assert answer["Status"] == "Success", (item.label, answer)
            assert answer["ParentStudy"] == study_id, item.label
            tags = orthanc.get(f"/instances/{answer['ID']}/simplified-tags")
            assert tags["SOPInstanceUID"] == item.sop_instance_uid

        study = orthanc.get(f"/studies/{study_id}")
        assert study["MainDicomTags"]["StudyInstanceUID"] == dx_both.StudyInstanceUID
        modalities = sorted(
            orthanc.get(f"/series/{series}")["MainDicomTags"]["Modality"]
            for series in study["Series"]
        )
        assert modalities == ["DX", "OT", "SEG", "SR"]
        assert len(orthanc.get(f"/studies/{study_id}/instances")) == 1 + len(written)

        # A re-run's objects carry the same UIDs: Orthanc already has them, no duplicates.
        again = write_outputs(dx_both, result_both, outputs, tmp_path / "again")
        report = next(item for item in again if item.kind == OutputKind.STRUCTURED_REPORT)
        assert orthanc.upload(report.path)["Status"] == "AlreadyStored"
        assert len(orthanc.get(f"/studies/{study_id}/instances")) == 1 + len(written)
