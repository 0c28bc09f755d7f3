"""The graph canvas: a QGraphicsView/Scene that mirrors the document's graph.

`GraphView` is the widget (objectName `graphView`); `GraphScene` keeps one `NodeItem`
per node and one `EdgeItem` per connection and changes the graph only through commands.
"""

from cnnstudio.ui.canvas.connect import connection_problem
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.items import NodeItem
from cnnstudio.ui.canvas.scene import GraphScene
from cnnstudio.ui.canvas.view import GraphView

__all__ = ["EdgeItem", "GraphScene", "GraphView", "NodeItem", "connection_problem"]
