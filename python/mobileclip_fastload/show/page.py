"""The HTML page: one self-contained file (images inlined as data URIs, plots as SVG)."""

from __future__ import annotations

import base64
import html
import io
import json
from importlib import resources
from string import Template
from typing import Any

import numpy as np
from PIL import Image

#: cosines on the page: this many decimals (the embedded JSON keeps full precision)
DECIMALS = 3


def template() -> Template:
    return Template((resources.files("mobileclip_fastload.show") / "template.html").read_text(encoding="utf-8"))


def png_data_uri(pixels: np.ndarray) -> str:
    """Lossless PNG of uint8 [H, W, 3]: the page shows the replayed pixels exactly."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def stored_data_uri(data: bytes) -> str:
    """The stored image bytes as they are (JPEG or PNG: what the loader decodes)."""
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def number(x: float) -> str:
    return f"{x:.{DECIMALS}f}"


def flags_html(flags: list[str], css: str = "flag") -> str:
    return "".join(f'<span class="{css}">{html.escape(f)}</span>' for f in flags)


def facts_html(facts: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)


def sample_html(
    view: dict[str, Any], teachers: list[str], stored_uri: str, aug_uris: list[str], replay_error: str | None = None
) -> str:
    i = view["index"]
    outliers = [f"agreement outlier: {o['score']} (z {o['z']:+.1f})" for o in view["outliers"]]
    uid = f'<span class="muted">{html.escape(view["uid"])}</span>'
    out = [
        f'<section class="sample" id="sample-{i}" data-index="{i}">',
        f"<h2>#{i} {uid} {flags_html(outliers, 'flag outlier')}</h2>",
        '<div class="images">',
        (
            f'<figure class="stored"><img class="stored" alt="stored image" src="{stored_uri}">'
            f"<figcaption>stored {view['size'][0]}x{view['size'][1]} "
            f"(original {view['orig_size'][0]}x{view['orig_size'][1]})</figcaption></figure>"
        ),
    ]
    if replay_error is not None:  # the loader skips such a sample; the page says why
        out.append(
            f"<figure><figcaption>{flags_html(['image does not decode'])} "
            f"{html.escape(replay_error)}</figcaption></figure>"
        )
    per_teacher = html.escape(" / ".join(teachers), quote=True)
    for aug, uri in zip(view["augmentations"], aug_uris):
        cos = f'<span title="{per_teacher}">' + " / ".join(number(c) for c in aug["cosines"]) + "</span>"
        out.append(
            f'<figure><img class="aug" alt="augmentation {aug["j"]}" data-aug="{aug["j"]}" src="{uri}">'
            f"<figcaption>aug {aug['j']}: {html.escape(aug['describe'])}<br>"
            f'cos vs mean: <span class="aug-cos" data-aug="{aug["j"]}">{cos}</span></figcaption></figure>'
        )
    out.append("</div>")
    heads = "".join(f"<th>cos, {html.escape(t)}</th>" for t in teachers)
    out.append(f'<table class="captions"><tr><th></th><th>caption</th>{heads}<th>flags</th></tr>')
    several_sets = len({c["caption_set"] for c in view["captions"] if c["caption_set"]}) > 1
    for c in view["captions"]:
        cells = "".join(f'<td class="cos" data-teacher="{k}">{number(x)}</td>' for k, x in enumerate(c["cosines"]))
        kind = c["kind"] + (f" ({html.escape(c['caption_set'])})" if several_sets and c["caption_set"] else "")
        out.append(
            f'<tr data-row="{c["text_row"]}"><td class="kind">{kind}</td>'
            f'<td class="text">{html.escape(c["text"]) or "<i>(empty)</i>"}</td>{cells}'
            f"<td>{flags_html(c['flags'])}</td></tr>"
        )
    out.append("</table></section>")
    return "\n".join(out)


def render(
    *,
    title: str,
    facts: list[tuple[str, str]],
    view_settings: str,
    summary_scope: str,
    summary_flags: str,
    plots: list[str],
    flag_legend: str,
    outlier_rule: str,
    metadata: Any,
    samples: list[str],
    data: dict[str, Any],
) -> str:
    return template().substitute(
        title=html.escape(title),
        facts=facts_html(facts),
        view_settings=html.escape(view_settings),
        summary_scope=html.escape(summary_scope),
        summary_flags=html.escape(summary_flags),
        plots="\n".join(plots),
        flag_legend=html.escape(flag_legend),
        outlier_rule=html.escape(outlier_rule),
        metadata=html.escape(json.dumps(metadata, indent=2, sort_keys=True)),
        samples="\n".join(samples),
        # "</" cannot end the script element early
        data=json.dumps(data).replace("</", "<\\/"),
    )
