"""CNN Studio: design, train and understand convolutional neural networks."""

__version__ = "0.1.0"
