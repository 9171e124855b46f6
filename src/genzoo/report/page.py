"""The HTML of genzoo's pages (`genzoo report`, `genzoo compare`): one self-contained file.

Every picture is embedded as a base64 data URI, so the page can be mailed or moved alone. Small
pixel grids are shown scaled up by a whole factor with `image-rendering: pixelated`, so 8x8 digits
stay crisp. An inline script checks, once the page has loaded, that every image decoded, and
writes the count into `<div id="genzoo-check" data-images-loaded=... data-images-total=...>`
(the browser test reads it; a reader sees a warning only when an image is broken).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

MIN_WIDTH = 200  # pixel grids narrower than this are scaled up by a whole factor
MAX_SCALE = 8

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd} .sub{color:#666}
.scroll{overflow-x:auto} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:6px 10px 6px 0;vertical-align:top;text-align:center}
figcaption{font-size:.85em;color:#444;max-width:420px;margin:auto}
img.pixel{image-rendering:pixelated} img{max-width:100%}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}
p.note{color:#555;font-style:italic} #genzoo-check{color:#b00;font-weight:bold}
"""

# After `load` every <img> has either decoded or failed; record the count for tests and readers.
CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var el = document.getElementById("genzoo-check");
  el.setAttribute("data-images-total", imgs.length);
  el.setAttribute("data-images-loaded", imgs.length - bad.length);
  el.setAttribute("data-broken", bad.map(function (i) { return i.alt; }).join(" | "));
  if (bad.length) {
    el.hidden = false;
    el.textContent = bad.length + " of " + imgs.length + " images failed to load";
  }
});
"""

MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def esc(text: object) -> str:
    return html.escape(str(text))


def num(x: float) -> str:
    """A number for a table: whole numbers between 1e3 and 1e7 plainly, else 4 significant."""
    return f"{x:.0f}" if 1e3 <= abs(x) < 1e7 else f"{x:.4g}"


def cell(v: object) -> str:
    """A metric or config value as table text."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return num(v)
    return str(v)


def heading(text: str, level: int = 2, id: str | None = None) -> str:
    ident = f' id="{esc(id)}"' if id else ""
    return f"<h{level}{ident}>{esc(text)}</h{level}>"


def para(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>"


def note(text: str) -> str:
    """A sentence saying why something is not shown."""
    return para(text, "note")


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def _numeric(text: str) -> bool:
    """Numbers ('1.5', '3 ± 0.2', 'n/a') are right-aligned in tables."""
    try:
        float(str(text).split(" ± ")[0])
        return True
    except ValueError:
        return text == "n/a"


def table(head: list[str], rows: list[list[str]], *, id: str | None = None) -> str:
    """A table of plain-text cells (escaped here), in a horizontally scrolling box."""
    ident = f' id="{esc(id)}"' if id else ""
    th = "".join(f"<th>{esc(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f'<td class="n">{esc(c)}</td>' if _numeric(c) else
                                    f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table{ident}><tr>{th}</tr>{body}</table></div>'


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size


def figure(data: bytes, mime: str, caption_html: str = "", alt: str = "", *,
           pixel: bool = True) -> str:
    """An embedded picture with a caption (HTML, escaped by the caller). pixel=True: a small grid
    is scaled up crisply by a whole factor (plots keep their own size)."""
    w, _ = image_size(data)
    scale = max(1, min(MAX_SCALE, MIN_WIDTH // max(w, 1))) if pixel else 1
    attrs = f' width="{w * scale}" class="pixel"' if scale > 1 else f' width="{w}"'
    src = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    cap = f"<figcaption>{caption_html}</figcaption>" if caption_html else ""
    return f'<figure><img src="{src}" alt="{esc(alt)}"{attrs}>{cap}</figure>'


def file_figure(path: Path, caption: str | None = None, *, pixel: bool = True) -> str:
    """A picture file embedded; the caption (HTML-escaped here) defaults to the file name."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    text = esc(path.name if caption is None else caption)
    return figure(path.read_bytes(), mime, text, alt=path.name, pixel=pixel)


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def document(title: str, body: list[str], subtitle: str = "") -> str:
    """The whole page: style, title, the body fragments, and the image check."""
    sub = f'<p class="sub">{esc(subtitle)}</p>' if subtitle else ""
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body><h1>{esc(title)}</h1>{sub}\n"
            + "\n".join(body)
            + '\n<div id="genzoo-check" hidden></div>'
            f"<script>{CHECK_SCRIPT}</script>\n</body></html>\n")
