"""One construct per capability (STYLE.md rule 9): storage, api, ingestion, training, pipeline, monitoring."""
