"""Real image-text data, offline: sources → webdataset shards, readers, splits, fingerprints."""
