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

import mcpx_figure_png

# Reply defaults when a request gives no limits (documented in PROTOCOL.md). 1568 px is the
# longest side a model's image input keeps; a larger image is downscaled on arrival anyway.
DEFAULT_MAX_IMAGES = 8
DEFAULT_IMAGE_MAX_BYTES = 300 * 1024
DEFAULT_IMAGE_MAX_SIDE = 1568
DEFAULT_IMAGE_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_RESULT_CHARS = 10_000
_FIT_ATTEMPTS = 6
_PALETTE_MODES = ("RGB", "RGBA", "LA")
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
        self.image_max_side = _int_field(raw, "image_max_side", DEFAULT_IMAGE_MAX_SIDE, 16)
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
    """Images of one cell: the first max_images inline (fitted to the caps, each change said in
    a note), the rest saved at full size to output_dir and named in one note."""

    def __init__(self, limits, output_dir, execution_count):
        self.limits = limits
        self.output_dir = output_dir
        self.execution_count = execution_count
        self.images = []
        self.saved_images = []
        self.notes = []
        self._count = 0
        self._stamp = None  # time of the cell's first saved image, shared by its file names
        self._saved_numbers = []
        self._saved_note_at = None

    def add_figure(self, fig):
        self._count += 1
        dpi = float(fig.dpi)
        if len(self.images) >= self.limits.max_images:
            self._save(mcpx_figure_png.figure_png(fig, dpi), "figure")
            return
        # The tight bounding box is the figure's size only after a layout: predict it (within
        # a pixel or two; at half the dpi that fits the canvas, as images are resampled even in
        # a layout), so one render is the right size.
        width, height = fig.get_size_inches() * dpi
        canvas_scale = self._scale(width, height)
        natural = None
        if canvas_scale < 1.0:
            inches = mcpx_figure_png.tight_inches(fig, dpi * canvas_scale / 2)
            if inches is not None:
                natural = (math.floor(inches[0] * dpi), math.floor(inches[1] * dpi))
                dpi *= self._scale(*natural)
                if dpi == fig.dpi:
                    natural = None  # fits after all: its render is its natural size
        data = mcpx_figure_png.figure_png(fig, dpi)
        size = png_size(data)
        if size is None:
            self.notes.append(f"image {self._count} dropped: the figure did not render as PNG")
            return
        self._add_inline(data, natural or size)

    def add_pil(self, img):
        self._count += 1
        if len(self.images) >= self.limits.max_images:
            self._save(_pil_png(img), "image")
            return
        target = self._fitted(img.size)
        data = _pil_png(_resized(img, target) if target != img.size else img)
        self._add_inline(data, img.size)

    def add_png(self, data):
        self._count += 1
        size = png_size(data)
        if size is None:
            self.notes.append(f"image {self._count} dropped: not a valid PNG")
            return
        if len(self.images) >= self.limits.max_images:
            self._save(data, "image")
            return
        target = self._fitted(size)
        if target != size:
            data = _pil_png(_resized(_pil_open(data), target))
        self._add_inline(data, size)

    def _scale(self, width, height):
        """The factor (at most 1) that brings a width x height image within the side and
        pixel caps."""
        limits = self.limits
        width, height = max(width, 1), max(height, 1)
        return min(1.0, limits.image_max_side / max(width, height),
                   math.sqrt(limits.image_max_pixels / (width * height)))

    def _fitted(self, size):
        scale = self._scale(*size)
        if scale >= 1.0:
            return size
        return tuple(max(1, math.floor(n * scale + 1e-6)) for n in size)

    def _add_inline(self, data, natural):
        """Sends data inline, made to fit the caps (a figure's render can still be off by a few
        pixels; the byte cap is met with a 256-colour palette, then by downscaling), and says
        in a note how it differs from the image at its natural size."""
        limits = self.limits
        size = png_size(data)
        palette = byte_fit = False
        if self._fitted(size) != size or len(data) > limits.image_max_bytes:
            src = _pil_open(data)
            if self._fitted(size) != size:
                src = _resized(src, self._fitted(size))
                data = _pil_png(src)
            for _ in range(_FIT_ATTEMPTS):
                if len(data) <= limits.image_max_bytes:
                    break
                byte_fit = True
                if not palette and src.mode in _PALETTE_MODES:
                    palette = True
                else:
                    # PNG size grows roughly with the pixel count; aim a little below the cap.
                    factor = 0.9 * math.sqrt(limits.image_max_bytes / len(data))
                    src = _resized(src, tuple(max(1, math.floor(n * factor)) for n in src.size))
                data = _pil_png(_palette(src) if palette else src)
            size = src.size
            if len(data) > limits.image_max_bytes:
                self.notes.append(f"image {self._count} dropped: still {len(data)} bytes at "
                                  f"{size[0]}×{size[1]} px (limit {_bytes(limits)})")
                return
        changes = []
        if tuple(size) != tuple(natural):
            changes.append(f"downscaled from {natural[0]}×{natural[1]} to {size[0]}×{size[1]} px")
        if palette:
            changes.append("reduced to 256 colours")
        if changes:
            caps = []
            if max(natural) > limits.image_max_side:
                caps.append(f"{limits.image_max_side} px a side")
            if natural[0] * natural[1] > limits.image_max_pixels:
                caps.append(f"{limits.image_max_pixels} pixels")
            if byte_fit:
                caps.append(_bytes(limits))
            self.notes.append(f"image {self._count}: {' and '.join(changes)} "
                              f"(limit{'s' if len(caps) > 1 else ''} {', '.join(caps)})")
        self.images.append({"mime_type": "image/png", "width": size[0], "height": size[1],
                            "bytes": len(data), "data": base64.b64encode(data).decode("ascii")})

    def _save(self, data, what):
        if not self.output_dir:
            self.notes.append(f"{what} {self._count} dropped: more than {self.limits.max_images} "
                              "images and no output_dir")
            return
        if self._stamp is None:
            self._stamp = time.strftime("%Y%m%d-%H%M%S")
        path = os.path.join(self.output_dir, self._file_name(self._count))
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as e:
            self.notes.append(f"{what} {self._count} dropped: cannot save it to "
                              f"{_shown_path(path)}: {e.strerror or e}")
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return
        self.saved_images.append(path)
        self._saved_numbers.append(self._count)
        self._note_saved()

    def _file_name(self, number):
        return f"{self._stamp}-cell{self.execution_count}-image{number}.png"

    def _note_saved(self):
        """One note for all saved images, rewritten as each is added."""
        numbers = self._saved_numbers
        if len(numbers) == 1:
            name = self._file_name(numbers[0])
        elif len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
            name = self._file_name(f"{{{numbers[0]}..{numbers[-1]}}}")
        else:
            name = self._file_name("{" + ",".join(map(str, numbers)) + "}")
        count = len(numbers)
        note = (f"{count} more image{'s' if count > 1 else ''} not shown "
                f"(max_images {self.limits.max_images}): saved as "
                f"{_shown_path(os.path.join(self.output_dir, name))}")
        if self._saved_note_at is None:
            self._saved_note_at = len(self.notes)
            self.notes.append(note)
        else:
            self.notes[self._saved_note_at] = note


def _bytes(limits):
    n = limits.image_max_bytes
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} bytes"


def _shown_path(path):
    """path as the code in the sandbox sees it: its working directory is /workspace."""
    cwd = os.getcwd()
    path = os.path.abspath(path)
    if cwd != "/" and os.path.commonpath([cwd, path]) == cwd:
        return "/workspace" + path[len(cwd):]
    return path


def _pil_open(data):
    from PIL import Image
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _resized(img, size):
    """img resized with Lanczos, after a conversion for modes Pillow resamples with nearest
    neighbour only (bilevel, palette) or not at all."""
    from PIL import Image
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        img = img.convert("RGBA")
    return img.resize(size, getattr(Image, "Resampling", Image).LANCZOS)


def _palette(img):
    """img (in one of _PALETTE_MODES) with at most 256 colours: a plot rarely needs more, and a
    palette PNG is about half the size. Fast octree: 15 times faster than median cut on a
    1568 px scatter plot (35 ms), looks the same and compresses better."""
    from PIL import Image
    if img.mode == "LA":
        img = img.convert("RGBA")
    return img.quantize(256, method=getattr(Image, "Quantize", Image).FASTOCTREE)


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
