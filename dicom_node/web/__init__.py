"""The web dashboard: an ASGI app (Starlette, Jinja2 pages, no JavaScript build).

It reads the node through ``dicom_node.db`` and the admin functions only and never
imports torch; what needs the models (the models page) comes in as a provider.
"""
