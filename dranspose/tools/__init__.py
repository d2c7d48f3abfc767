"""What users run besides the pipeline: replay, ``dranspose up``, capture, and sources (the
synthetic detector and capture playback)."""
