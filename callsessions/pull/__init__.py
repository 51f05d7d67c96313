"""Many requests: the pull engine, the stream, the checkpoint, pull_to."""
