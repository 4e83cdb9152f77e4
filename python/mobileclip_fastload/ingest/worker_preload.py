"""Imported once by a process pool's forkserver (``run_tasks(preload=...)``), so every forked worker starts
with the store writer, Pillow's decoders and the CLIP tokenizer (~0.5 s) already loaded."""

import PIL.Image

import mobileclip_fastload.store  # noqa: F401
from mobileclip_fastload.tokenizer import default_tokenizer

PIL.Image.preinit()
default_tokenizer()
