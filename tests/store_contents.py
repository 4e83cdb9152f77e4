"""Every field of every sample of a store, through every accessor: what tests compare between two stores
that must hold the same samples (schema versions, remote vs local) and what the fuzz test touches on a store
that opened. A helper module, not a test module."""

from __future__ import annotations

from mobileclip_fastload import Store


def read_everything(store: Store) -> list:
    """Touch every accessor of every sample (must not crash on a store that opened)."""
    out = []
    for i in range(len(store)):
        s = store.sample(i)
        out.append(
            (
                s.uid,
                s.image,
                s.caption,
                s.syn_captions,
                s.caption_tokens.tobytes(),
                [t.tobytes() for t in s.syn_tokens],
                s.aug.tobytes(),
                s.image_emb.tobytes(),
                s.text_emb.tobytes(),
                _bytes(s.image_emb_scale),
                _bytes(s.text_emb_scale),
                s.sha256,
                s.flags,
                s.width,
                s.height,
            )
        )
    return out


def _bytes(scales) -> bytes | None:
    """int8 stores carry per-row scales; the others have none."""
    return None if scales is None else scales.tobytes()
