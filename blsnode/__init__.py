"""The application on top: the ``blsnode`` command, ``serve`` and the embedded worker.

It imports ``dicom_node``, ``worker``, ``trainer`` and ``blsgan_core``; none of them
imports it, not even by name.
"""
