"""Write and read Composer `.mds` datasets and MDS v2 (mosaicml-streaming) datasets on any fsspec URL.
No Dagster here."""

from .mdsv2_writer import MDSWriter
from .reader import MDSDataset
from .writer import StreamingDatasetWriter

__all__ = ["MDSDataset", "MDSWriter", "StreamingDatasetWriter"]
