"""The build of a dataset in plain Python, with no Dagster import: raw batches and their records
(`raw_sources`), how they group into partitions (`grouping`), field selection and encodings
(`selection`, `profile`), writing one partition's dataset in either format (`partition_writer`,
`streaming_partition`), what it was built from (`stamps`), where partitions live (`layout`),
publishing and upkeep of the output (`streaming_publish`, `ownership`, `orphans`, `damage`,
`shard_audit`); docs/architecture.md lists every module. The Dagster layer (`mds_assets/*.py`,
`mds_assets/assets/`) only declares assets, checks, jobs and automation around these functions."""
