"""acigen: compile image manifests into ninja builds of App Container Images."""

__version__ = "0.1.0"
