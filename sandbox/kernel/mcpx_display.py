"""Rich output of a cell: figures and images as PNG, text forms of values, display().

Images are rendered while the cell runs (plt.show(), display()) and once more for every figure
still open when the cell ends, so their order in the reply is the order in which they appeared.
"""

import base64
import io
import math
import os
import sys
import time

# Reply defaults when a request gives no limits (documented in PROTOCOL.md).
DEFAULT_MAX_IMAGES = 8
DEFAULT_IMAGE_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_IMAGE_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_RESULT_CHARS = 10_000
_MIN_DPI = 10
_FIT_ATTEMPTS = 6
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_current = None  # CellOutput of the running cell, None while idle


def set_current(out):
    global _current
    _current = out


def png_size(data):
    """(width, height) from the IHDR chunk, or None when data is not a PNG."""
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def cap_text(text, max_chars):
    """Keeps head and tail of an over-long text with a marker naming what was cut."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    marker = f"\n... [{len(text) - max_chars} characters omitted] ...\n"
    head = max(0, (max_chars - len(marker)) * 2 // 3)
    tail = max(0, max_chars - len(marker) - head)
    return text[:head] + marker + (text[-tail:] if tail else "")


def text_form(obj, max_chars=DEFAULT_MAX_RESULT_CHARS):
    """What a value looks like in a reply: pandas objects in their table form, else repr."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        text = obj.to_string(max_rows=60, min_rows=20, max_cols=30, max_colwidth=60,
                             show_dimensions="truncate")
    elif pd is not None and isinstance(obj, pd.Series):
        text = obj.to_string(max_rows=60, min_rows=20, length="truncate", dtype=True, name=True)
    else:
        text = repr(obj)
    if not isinstance(text, str):
        raise TypeError(f"__repr__ returned {type(text).__name__}, not str")
    return cap_text(text, max_chars)


class Limits:
    def __init__(self, raw):
        raw = raw or {}
        self.max_images = _int_field(raw, "max_images", DEFAULT_MAX_IMAGES, 0)
        self.image_max_bytes = _int_field(raw, "image_max_bytes", DEFAULT_IMAGE_MAX_BYTES, 1024)
        self.image_max_pixels = _int_field(raw, "image_max_pixels", DEFAULT_IMAGE_MAX_PIXELS, 1)
        self.max_result_chars = _int_field(raw, "max_result_chars", DEFAULT_MAX_RESULT_CHARS, 100)


def _int_field(raw, name, default, minimum):
    value = raw.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"limits.{name} must be an integer >= {minimum}, got {value!r}")
    return value


class CellOutput:
    """Images of one cell: the first max_images inline (fitted to the caps), the rest saved."""

    def __init__(self, limits, output_dir, execution_count):
        self.limits = limits
        self.output_dir = output_dir
        self.execution_count = execution_count
        self.images = []
        self.saved_images = []
        self.notes = []
        self._count = 0

    def add_figure(self, fig):
        dpi = float(fig.dpi)

        def render(scale):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=max(dpi * scale, _MIN_DPI), bbox_inches="tight")
            return buf.getvalue()

        self._add(render, "figure")

    def add_pil(self, img):
        def render(scale):
            src = img
            if scale < 1.0:
                size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
                src = img.resize(size, _pil_lanczos())
            return _pil_png(src)

        self._add(render, "image")

    def add_png(self, data):
        def render(scale):
            if scale >= 1.0:
                return data
            from PIL import Image
            img = Image.open(io.BytesIO(data))
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            return _pil_png(img.resize(size, _pil_lanczos()))

        self._add(render, "image")

    def _add(self, render, what):
        self._count += 1
        if len(self.images) >= self.limits.max_images:
            self._save(render(1.0), what)
            return
        data = self._fit(render)
        if data is None:
            return
        width, height = png_size(data) or (0, 0)
        self.images.append({"mime_type": "image/png", "width": width, "height": height,
                            "bytes": len(data), "data": base64.b64encode(data).decode("ascii")})

    def _fit(self, render):
        """Renders at decreasing scale until both the byte and the pixel caps hold."""
        limits = self.limits
        scale = 1.0
        data = render(scale)
        for _ in range(_FIT_ATTEMPTS):
            size = png_size(data)
            if size is None:
                self.notes.append(f"image {self._count} dropped: not a valid PNG")
                return None
            pixels = size[0] * size[1]
            factor = 1.0
            if pixels > limits.image_max_pixels:
                factor = min(factor, math.sqrt(limits.image_max_pixels / pixels))
            if len(data) > limits.image_max_bytes:
                # PNG size grows roughly with the pixel count; aim a little below the cap.
                factor = min(factor, 0.9 * math.sqrt(limits.image_max_bytes / len(data)))
            if factor >= 1.0:
                return data
            scale *= factor
            data = render(scale)
        size = png_size(data)
        if size and len(data) <= limits.image_max_bytes and \
                size[0] * size[1] <= limits.image_max_pixels:
            return data
        self.notes.append(f"image {self._count} dropped: still {len(data)} bytes after downscaling "
                          f"(cap {limits.image_max_bytes} bytes)")
        return None

    def _save(self, data, what):
        if not self.output_dir:
            self.notes.append(f"{what} {self._count} dropped: more than {self.limits.max_images} "
                              "images and no output_dir")
            return
        name = (f"{time.strftime('%Y%m%d-%H%M%S')}-cell{self.execution_count}-"
                f"{self._count}.png")
        path = os.path.join(self.output_dir, name)
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as e:
            self.notes.append(f"{what} {self._count} dropped: cannot save it to {path}: "
                              f"{e.strerror or e}")
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return
        self.saved_images.append(path)


def _pil_lanczos():
    from PIL import Image
    return getattr(Image, "Resampling", Image).LANCZOS


def _pil_png(img):
    if img.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        img = img.convert("RGBA")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _is_figure(obj):
    mpl_figure = sys.modules.get("matplotlib.figure")
    return mpl_figure is not None and isinstance(obj, mpl_figure.Figure)


def _is_pil_image(obj):
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image)


def is_image_value(obj):
    return _is_figure(obj) or _is_pil_image(obj)


def _close_if_managed(fig):
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None and fig.canvas.manager is not None and plt.fignum_exists(fig.number):
        plt.close(fig)


def show_figures(figures=None):
    """Turns figures (default: every open pyplot figure) into images of the running cell and
    closes them, so they are not shown twice. Outside a cell they stay open for the next one."""
    out = _current
    if out is None:
        return
    if figures is None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        figures = [plt.figure(num) for num in plt.get_fignums()]
    for fig in figures:
        try:
            out.add_figure(fig)
        finally:
            _close_if_managed(fig)


def show_value_image(obj):
    """For a cell's last value that is a figure or an image: show it instead of its repr."""
    if _is_figure(obj):
        show_figures([obj])
    elif _current is not None:
        _current.add_pil(obj)


def display(*objs):
    """Shows objects mid-cell: figures and images as images (in order), anything else as text
    on stdout (pandas objects in their table form)."""
    for obj in objs:
        if _is_figure(obj):
            show_figures([obj])
        elif _is_pil_image(obj):
            if _current is not None:
                _current.add_pil(obj)
        elif hasattr(type(obj), "_repr_png_") and _current is not None:
            data = obj._repr_png_()
            if isinstance(data, (bytes, bytearray)):
                _current.add_png(bytes(data))
            else:
                print(text_form(obj), flush=True)
        else:
            limit = _current.limits.max_result_chars if _current else DEFAULT_MAX_RESULT_CHARS
            print(text_form(obj, limit), flush=True)
