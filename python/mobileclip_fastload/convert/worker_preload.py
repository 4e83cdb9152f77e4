"""Imported once by the forkserver, so every forked worker starts with the converter,
the store writer, Pillow's decoders and the CLIP tokenizer (~0.5 s) already loaded."""

import mobileclip_fastload.convert.sample_builder
import mobileclip_fastload.convert.shard_task
import mobileclip_fastload.ingest.worker_preload  # noqa: F401
