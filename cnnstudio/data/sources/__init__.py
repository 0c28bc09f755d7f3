"""Readers for each ``data.source`` kind: folders, segmentation folders and array files."""
