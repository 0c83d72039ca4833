"""One construct per capability: storage, api, ingestion, training, pipeline, monitoring."""
