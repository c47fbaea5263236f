"""0.11.0's module name for the async S3 backend: the class lives in ``backends.s3``."""

from .s3 import AsyncS3Database

__all__ = ["AsyncS3Database"]
