"""A few small real photographs shipped with the package, so that `mobileclip-fastload
demo` needs nothing but the package: public domain / CC0 photographs from scikit-image's
sample data, 256 px JPEGs (sources and licences: README.md beside this file; regenerated
by scripts/make-sample-photos)."""

from __future__ import annotations

from importlib import resources

import numpy as np

NAMES = ("astronaut", "camera", "chelsea", "coffee", "hubble_deep_field", "retina", "rocket")


def jpeg_bytes(name: str) -> bytes:
    """The shipped JPEG file of one photograph."""
    if name not in NAMES:
        raise ValueError(f"no sample photograph {name!r}; there are {', '.join(NAMES)}")
    return resources.files(__name__).joinpath(f"{name}.jpg").read_bytes()


def load(name: str) -> np.ndarray:
    """One photograph's pixels as Pillow decodes them: [H, W, 3] uint8, or [H, W] for the grey one."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(jpeg_bytes(name))) as img:
        return np.asarray(img)


def load_all() -> list[np.ndarray]:
    return [load(name) for name in NAMES]
