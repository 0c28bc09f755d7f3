"""Drag-and-drop payloads between the palette and the canvas."""

# The payload is the layer type name (e.g. "Conv2d") in UTF-8.
MIME_LAYER = "application/x-cnnstudio-layer"
# The payload is a block name from cnnstudio.core.blocks.BLOCKS (e.g. "Residual block").
MIME_BLOCK = "application/x-cnnstudio-block"
# Copy/paste of nodes: the payload is JSON {"nodes": [...]} in the project file's node form.
MIME_NODES = "application/x-cnnstudio-nodes"
