"""The asset graph: raw_samples -> selected_samples -> mds_shards (one step: `batch_pipeline`) -> mds_index."""
