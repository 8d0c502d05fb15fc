"""Write and read Composer `.mds` datasets on any fsspec URL. No Dagster here."""

from .reader import MDSDataset
from .storage import WriterStorageError
from .writer import StreamingDatasetWriter

__all__ = ["MDSDataset", "StreamingDatasetWriter", "WriterStorageError"]
