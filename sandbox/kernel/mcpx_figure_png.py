"""A matplotlib figure as PNG, cropped to what it draws, as savefig(bbox_inches="tight") would.

The tight save lays the figure out twice (once to find its box, once to draw it), and finding
the box alone costs most of a plain save (Axis.get_tightbbox recomputes every tick). So the figure
is drawn once over its whole canvas and cropped to the pixels that differ from the background,
and to its axes (a white axes on a white figure is part of the tight box), padded by
savefig.pad_inches. That is only right when nothing reaches past the canvas, which the pixels
cannot tell: then, and for what this path does not handle, the figure is saved tight as before.
Past the canvas means: a text, legend or annotation whose box is not within the canvas (one wholly
outside leaves no pixel at the edge), an axes at the edge (its tick labels would be outside), or
non-background pixels at the edge that no text or legend known to be inside accounts for (tick
labels, spines or an unclipped line crossing it).
"""

import io
import math
import sys

# Pixels this close to the canvas edge count as touching it: a glyph's antialiased edge can be
# background-coloured where a label crosses the edge.
_EDGE_PX = 2
# Extents are in float display units; text metrics differ from the drawn ink by a pixel or so.
_EXTENT_SLACK_PX = 1.0


def figure_png(fig, dpi):
    data = _cropped_png(fig, dpi)
    return data if data is not None else _tight_png(fig, dpi)


def tight_inches(fig, dpi):
    """Size in inches of the figure saved with bbox_inches="tight" at dpi, laid out but not
    rasterized (as savefig does; text extents depend a little on the dpi), or None."""
    import matplotlib
    old_dpi = fig.dpi
    try:
        fig.dpi = dpi
        fig.draw_without_rendering()
        bbox = fig.get_tightbbox()
    except Exception:
        return None
    finally:
        fig.dpi = old_dpi
    pad = matplotlib.rcParams.get("savefig.pad_inches")
    if isinstance(pad, (int, float)):
        bbox = bbox.padded(pad)
    if not (bbox.width > 0 and bbox.height > 0):
        return None
    return bbox.width, bbox.height


def _tight_png(fig, dpi):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class _Render:
    """The file savefig(format="rgba") writes to (it only needs write and seek) and the
    draw_event listener that looks at the figure while it is laid out at the render's dpi."""

    def __init__(self, fig):
        self.fig = fig
        self.pixels = None
        self.drawn = False
        self.outside = False
        # (x0, y0, x1, y1) in pixels, origin at the top left
        self.axes_boxes = []
        self.inside_boxes = []  # texts and legends, each found within the canvas

    def seek(self, *args):
        return 0

    def write(self, data):
        # The renderer's buffer itself (a memoryview holding a reference to it): no copy.
        self.pixels = data
        return len(data)

    def on_draw(self, event):
        self.drawn = True
        try:
            self._look(event.renderer)
        except Exception:
            self.outside = True  # cannot tell: the tight save decides

    def _look(self, renderer):
        fig = self.fig
        width, height = fig.bbox.width, fig.bbox.height
        slack = _EXTENT_SLACK_PX

        def top_left(box):
            if box.x0 < -slack or box.y0 < -slack or box.x1 > width + slack or \
                    box.y1 > height + slack:
                self.outside = True
            return box.x0, height - box.y1, box.x1, height - box.y0

        for artist in _loose_artists(fig):
            box = artist.get_window_extent(renderer)
            if box.width > 0 or box.height > 0:
                self.inside_boxes.append(top_left(box))
        axes = [ax for ax in fig.axes if ax.get_visible()]
        axes += [child for ax in axes for child in ax.child_axes if child.get_visible()]
        self.axes_boxes = [top_left(ax.bbox) for ax in axes]
        # Artists added to the figure itself: only whether they stay within the canvas (an image
        # over the whole canvas explains no edge pixels: it is the non-uniform background).
        for artist in (*fig.artists, *fig.lines, *fig.patches, *fig.images):
            if artist.get_visible() and not _clipped(artist):
                top_left(artist.get_window_extent(renderer))


def _loose_artists(fig):
    """Artists that can sit anywhere, whatever the axes' positions: the figure's texts and
    legends, each axes' titles, axis labels, legend and unclipped texts (annotations). Ticks
    and their labels are left to the edge pixels: they hang off their axes, so one that leaves
    the canvas crosses its edge."""
    found = list(fig.texts) + list(fig.legends)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        found += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label,
                  ax.xaxis.offsetText, ax.yaxis.offsetText]
        if ax.legend_ is not None:
            found.append(ax.legend_)
        found += [t for t in ax.texts if not _clipped(t)]
    return [a for a in found if a.get_visible() and (not hasattr(a, "get_text") or a.get_text())]


def _clipped(artist):
    return artist.get_clip_on() and (artist.get_clip_box() is not None or
                                     artist.get_clip_path() is not None)


def _cropped_png(fig, dpi):
    """The PNG of one render cropped to its content, or None when the tight save must decide."""
    import matplotlib
    np = sys.modules.get("numpy")
    rc = matplotlib.rcParams
    pad = rc["savefig.pad_inches"]
    if np is None or rc["savefig.bbox"] == "tight" or not isinstance(pad, (int, float)) or \
            getattr(fig, "subfigs", None):
        return None
    render = _Render(fig)
    canvas = fig.canvas
    cid = canvas.mpl_connect("draw_event", render.on_draw)
    try:
        fig.savefig(render, format="rgba", dpi=dpi)
    finally:
        canvas.mpl_disconnect(cid)
    if not render.drawn or render.outside or render.pixels is None:
        return None
    try:
        rgba = np.asarray(render.pixels)
        if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8 or \
                0 in rgba.shape[:2]:
            return None
        box = _content_box(np, rgba, render)
        return None if box is None else _encode(np, rgba, box, round(pad * dpi))
    except Exception:
        return None  # a buffer this code did not expect: the tight save still works


def _content_box(np, rgba, render):
    """(x0, y0, x1, y1) of the pixels unlike the top-left one, the axes and the texts; None
    when there are none, or when the figure may go on past the canvas: an axes at its edge, or
    pixels at the edge that are not those of a text or legend known to be inside."""
    height, width = rgba.shape[:2]
    flat = np.ascontiguousarray(rgba).view(np.uint32)[..., 0]
    ink = flat != flat[0, 0]
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    boxes = [(math.floor(b[0]), math.floor(b[1]), math.ceil(b[2]), math.ceil(b[3]))
             for b in render.axes_boxes]
    if any(_at_edge(b, width, height) for b in boxes):
        return None
    if rows.size:
        ink_box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        if _at_edge(ink_box, width, height) and \
                not _edges_explained(np, ink, render.inside_boxes):
            return None
        boxes.append(ink_box)
    # Text boxes reach past the ink (ascent, descent), as in the tight box.
    boxes += [(max(0, math.floor(b[0])), max(0, math.floor(b[1])), min(width, math.ceil(b[2])),
               min(height, math.ceil(b[3]))) for b in render.inside_boxes]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _at_edge(box, width, height):
    return (box[0] < _EDGE_PX or box[1] < _EDGE_PX or box[2] > width - _EDGE_PX or
            box[3] > height - _EDGE_PX)


def _edges_explained(np, ink, boxes):
    """Whether every non-background pixel in the edge bands lies in one of boxes (texts and
    legends found within the canvas: a y label drawn at the very edge is whole)."""
    height, width = ink.shape
    e = _EDGE_PX
    bands = ((ink[:, :e], lambda b: b[0] < e), (ink[:, width - e:], lambda b: b[2] > width - e))
    for band, reaches in bands:
        rows = np.flatnonzero(band.any(axis=1))
        if rows.size and not _covered(np, rows, height,
                                      [(b[1], b[3]) for b in boxes if reaches(b)]):
            return False
    bands = ((ink[:e, :], lambda b: b[1] < e), (ink[height - e:, :], lambda b: b[3] > height - e))
    for band, reaches in bands:
        cols = np.flatnonzero(band.any(axis=0))
        if cols.size and not _covered(np, cols, width,
                                      [(b[0], b[2]) for b in boxes if reaches(b)]):
            return False
    return True


def _covered(np, positions, size, spans):
    covered = np.zeros(size, bool)
    for start, end in spans:
        covered[max(0, math.floor(start - _EXTENT_SLACK_PX)):
                max(0, math.ceil(end + _EXTENT_SLACK_PX))] = True
    return bool(covered[positions].all())


def _encode(np, rgba, box, pad):
    """PNG of rgba cropped to box plus pad pixels a side (background past the canvas, as the
    tight save draws it): RGB when every pixel is opaque, a quarter less data to compress."""
    from PIL import Image
    height, width = rgba.shape[:2]
    x0, y0, x1, y1 = box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad
    crop = rgba[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
    opaque = bool((crop[..., 3] == 255).all())
    if opaque:
        crop = crop[..., :3]
    out_of_canvas = ((max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width)))
    if any(n for side in out_of_canvas for n in side):
        background = rgba[0, 0, :crop.shape[2]]
        canvas = np.empty((y1 - y0, x1 - x0, crop.shape[2]), np.uint8)
        canvas[...] = background
        top, left = out_of_canvas[0][0], out_of_canvas[1][0]
        canvas[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
        crop = canvas
    img = Image.fromarray(np.ascontiguousarray(crop), "RGB" if opaque else "RGBA")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
