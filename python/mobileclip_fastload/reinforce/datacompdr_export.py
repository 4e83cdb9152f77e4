"""Writing reinforced samples as DataCompDR-format WebDataset shards (joined layout),
so DataCompDR tools, and this project's own ``convert``, read them.

Per sample key: the input image (its own extension) and ``txt``, then
``url.txt``, ``syn.json`` (``syn_text`` = the first captioner's captions,
``syn_text_<tag>`` for each further captioner), ``paug.json``
(``{"param_aug": [...]}``, boxes in pixels of the image in the tar), ``npz``
(float32 ``image_emb`` [J, K*D], ``text_emb`` [1+S, K*D] with row 0 the real
caption, ``syn_text_<tag>_emb`` [S, K*D] per further captioner: the values are
the store dtype's, widened to float32, so a conversion back gives the same
store values) and ``json`` (``uid``, ``sha256`` of the image bytes).

One tar per input shard, ``<task_id>.tar``, written to a temporary name and
renamed when complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from mobileclip_fastload.reinforce.prepare import PreparedSample, param_aug_json
from mobileclip_fastload.store.atomic import publish, temp_name


class DataCompDRTarWriter:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.tmp = temp_name(Path(path))
        self.tar = tarfile.open(self.tmp, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115 -- the writer closes it
        self.count = 0

    def _add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644  # fixed metadata: same run, same bytes
        self.tar.addfile(info, io.BytesIO(data))

    def add(
        self,
        s: PreparedSample,
        syn_sets: list[tuple[str, list[str]]],
        image_emb: np.ndarray,
        text_emb: np.ndarray,
        extra_syn_embs: dict[str, np.ndarray],
    ) -> None:
        """``syn_sets``: (key, captions) in order, the first being ``syn_text``; embeddings as float32."""
        key = f"{self.count:09d}"
        arrays = {"image_emb": image_emb.astype(np.float32), "text_emb": text_emb.astype(np.float32)}
        arrays.update({f"{k}_emb": v.astype(np.float32) for k, v in extra_syn_embs.items()})
        members = [
            (s.image_ext, s.image),
            ("txt", s.caption.encode("utf-8")),
            ("url.txt", s.url.encode("utf-8")),
            ("syn.json", json.dumps(dict(syn_sets)).encode("utf-8")),
            ("paug.json", param_aug_json(s.entries)),
            ("npz", npz_bytes(arrays)),
            ("json", json.dumps({"uid": s.uid, "sha256": s.sha256.hex()}).encode("utf-8")),
        ]
        for ext, data in members:
            self._add(f"{key}.{ext}", data)
        self.count += 1

    def close(self) -> None:
        self.tar.close()
        publish(self.tmp, self.path)

    def abort(self) -> None:
        self.tar.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez`` (stored, no compression) with fixed member timestamps, so equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()
