"""policyscan: a production-readiness scanner for deployment files."""

__version__ = "0.1.0"
