"""sketchgen: class-conditional pen-stroke sketch generation on Google QuickDraw."""

__version__ = "0.1.0"
