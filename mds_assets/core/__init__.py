"""The build of a dataset in plain Python, with no Dagster import: raw batches and their records
(`raw_sources`), field selection and encodings (`selection`, `profile`), writing one batch as a
partition dataset (`partition_writer`), what it was built from (`stamps`), where partitions live
(`layout`), demo data and wording. The Dagster layer (`mds_assets/*.py`, `mds_assets/assets/`)
only declares assets, checks, jobs and automation around these functions."""
