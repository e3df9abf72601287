"""Evaluation reports: plain functions returning JSON-ready dictionaries."""
