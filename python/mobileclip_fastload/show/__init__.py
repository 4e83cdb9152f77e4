"""`mobileclip-fastload show`: a self-contained HTML view of a DR store: samples, their
augmentations as the loader replays them, captions with degenerate-caption flags,
per-teacher cosines from the stored embeddings, and store-wide plots (docs/SHOW.md)."""

from mobileclip_fastload.show.view import ViewReport, write_view

__all__ = ["ViewReport", "write_view"]
