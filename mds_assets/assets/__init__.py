"""The asset graph: raw_samples -> selected_samples -> mds_shards -> mds_index."""
