"""matplotlib and images: figures become PNGs, show()/display() order, caps, overflow, cache."""

import base64
import io
import os
import re
import subprocess

import pytest

from conftest import KERNEL_DIR, PYTHON, Kernel, png_header_size

pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def mpl_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("mpl-cache")
    run = subprocess.run([PYTHON, os.path.join(KERNEL_DIR, "prepare_mpl_cache.py"), str(cache)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    return cache


@pytest.fixture(scope="module")
def plot_kernel(tmp_path_factory, mpl_cache):
    k = Kernel(tmp_path_factory.mktemp("ws"), preload="matplotlib",
               env={"MCPX_MPL_CACHE": str(mpl_cache)})
    assert k.ready["preloaded"] == ["matplotlib"], k.ready
    k.execute("import matplotlib.pyplot as plt\nimport numpy as np")
    yield k
    k.close()


def _decode(image):
    data = base64.b64decode(image["data"])
    assert image["mime_type"] == "image/png"
    assert png_header_size(image["data"]) == (image["width"], image["height"])
    assert image["bytes"] == len(data)
    with PIL.open(io.BytesIO(data)) as img:
        img.load()  # decodes every pixel: a truncated PNG fails here
        assert img.size == (image["width"], image["height"])
    return data


def test_one_figure_is_one_png(plot_kernel):
    reply = plot_kernel.execute("plt.figure(figsize=(4, 3), dpi=100)\nplt.plot([1, 3, 2])\n"
                                "plt.title('t')")
    assert reply["status"] == "ok", reply["error"]
    assert len(reply["images"]) == 1
    image = reply["images"][0]
    _decode(image)
    # Tight bounding box: at most the 400x300 canvas, and most of it.
    assert 300 <= image["width"] <= 400 and 220 <= image["height"] <= 300
    assert reply["stderr"] == ""
    assert plot_kernel.execute("plt.get_fignums()")["result"] == "[]"


def test_several_figures_in_creation_order(plot_kernel):
    reply = plot_kernel.execute(
        "for w, h in [(2, 2), (6, 2), (2, 6)]:\n"
        "    fig = plt.figure(figsize=(w, h), dpi=50)\n"
        "    fig.add_axes([0, 0, 1, 1]).plot([0, 1])")
    sizes = [(i["width"], i["height"]) for i in reply["images"]]
    assert len(sizes) == 3, sizes
    for image in reply["images"]:
        _decode(image)
    assert sizes[0][0] < sizes[1][0] and sizes[1][0] > sizes[2][0]
    assert sizes[2][1] > sizes[0][1] and sizes[2][1] > sizes[1][1]


def test_show_and_display_emit_in_order_without_warnings(plot_kernel):
    reply = plot_kernel.execute(
        "from PIL import Image\n"
        "f1 = plt.figure(figsize=(2, 2), dpi=50); f1.add_axes([0, 0, 1, 1]).plot([0, 1])\n"
        "plt.show()\n"
        "print('after show')\n"
        "display(Image.new('RGB', (123, 45), 'red'))\n"
        "f2 = plt.figure(figsize=(3, 2), dpi=50); f2.add_axes([0, 0, 1, 1]).plot([0, 1])\n"
        "display(f2)\n"
        "f3 = plt.figure(figsize=(1, 3), dpi=50); f3.add_axes([0, 0, 1, 1]).plot([0, 1])\n"
        "f3.show()\n"
        "plt.figure(figsize=(4, 1), dpi=50).add_axes([0, 0, 1, 1]).plot([0, 1])")
    assert reply["status"] == "ok", reply["error"]
    sizes = [(i["width"], i["height"]) for i in reply["images"]]
    assert len(sizes) == 5, sizes
    assert sizes[1] == (123, 45)
    assert 0.8 < sizes[0][0] / sizes[0][1] < 1.25  # square f1 (tick labels stick out)
    assert sizes[2][0] > sizes[2][1]  # f2 is 3x2
    assert sizes[3][0] < sizes[3][1]  # f3 is 1x3
    assert sizes[4][0] > 2 * sizes[4][1]  # left open, shown at the end
    assert reply["stdout"] == "after show\n"
    assert reply["stderr"] == ""


def test_forced_agg_backend_show_has_no_warning(plot_kernel):
    reply = plot_kernel.execute("import matplotlib\nmatplotlib.use('Agg')\n"
                                "plt.plot([1, 2])\nplt.show()\nplt.gcf().show()")
    assert reply["stderr"] == ""
    assert len(reply["images"]) == 1
    plot_kernel.execute("plt.switch_backend('module://mcpx_mpl_backend')")


def test_display_dataframe_prints_table(plot_kernel):
    pytest.importorskip("pandas")
    reply = plot_kernel.execute(
        "import pandas as pd\n"
        "display(pd.DataFrame({'col': [10, 20]}))\n"
        "print('next')")
    assert reply["stdout"].splitlines() == ["   col", "0   10", "1   20", "next"]


def test_figure_as_last_value_is_an_image(plot_kernel):
    reply = plot_kernel.execute(
        "from matplotlib.figure import Figure\n"
        "fig = Figure(figsize=(2, 1), dpi=50)\n"
        "fig.add_subplot().plot([1, 2])\n"
        "fig")
    assert reply["result"] is None
    assert len(reply["images"]) == 1
    _decode(reply["images"][0])


def test_figure_kept_when_cell_fails(plot_kernel):
    reply = plot_kernel.execute("plt.plot([1, 2])\nraise ValueError('after plotting')")
    assert reply["status"] == "error"
    assert len(reply["images"]) == 1


def test_large_image_is_downscaled_under_byte_cap(plot_kernel):
    code = ("rng = np.random.default_rng(0)\n"
            "fig = plt.figure(figsize=(8, 8), dpi=100)\n"
            "fig.add_axes([0, 0, 1, 1]).imshow(rng.random((400, 400, 3)))")
    full = plot_kernel.execute(code, limits={"image_max_bytes": 4 << 20})["images"][0]
    assert full["bytes"] > 300_000, "the test image must be over the cap before scaling"
    reply = plot_kernel.execute(code, limits={"image_max_bytes": 100_000})
    image = reply["images"][0]
    _decode(image)
    assert image["bytes"] <= 100_000
    assert image["width"] < full["width"] and image["height"] < full["height"]
    # First a palette, then smaller: both said, with the cap that forced them.
    assert reply["notes"] == [
        f"image 1: downscaled from {full['width']}×{full['height']} to {image['width']}×"
        f"{image['height']} px and reduced to 256 colours (limit 100000 bytes)"]


def test_palette_alone_when_it_meets_the_byte_cap(plot_kernel):
    reply = plot_kernel.execute(
        "rng = np.random.default_rng(0)\n"
        "plt.figure(figsize=(10, 10), dpi=100)\n"
        "plt.scatter(rng.random(3000), rng.random(3000), c=rng.random(3000))",
        limits={"image_max_bytes": 200 * 1024})
    image = reply["images"][0]
    with PIL.open(io.BytesIO(_decode(image))) as img:
        assert img.mode == "P"
    assert image["bytes"] <= 200 * 1024
    assert reply["notes"] == ["image 1: reduced to 256 colours (limit 200 KiB)"]


def test_4000px_figure_fits_side_and_bytes_in_one_render(plot_kernel):
    code = ("rng = np.random.default_rng(0)\n"
            "fig = plt.figure(figsize=(40, 40), dpi=100)\n"
            "plt.scatter(rng.random(5000), rng.random(5000), c=rng.random(5000))\n"
            "plt.title('a big figure')\n"
            "calls = []\n"
            "savefig = fig.savefig\n"
            "fig.savefig = lambda *a, **k: calls.append(k['dpi']) or savefig(*a, **k)")
    reply = plot_kernel.execute(code)  # the kernel's defaults: 1568 px a side, 300 KiB
    image = reply["images"][0]
    _decode(image)
    # Predicted from a layout without rendering: within a pixel or two of the limit.
    assert 1560 <= max(image["width"], image["height"]) <= 1568, image
    assert image["bytes"] <= 300 * 1024
    # One render, at about 49 dpi: the tight box of this 40 in figure is about 32 in.
    assert re.fullmatch(r"\[4\d\.\d+\]", plot_kernel.execute("calls")["result"])
    [note] = reply["notes"]
    assert re.fullmatch(rf"image 1: downscaled from 3\d\d\d×3\d\d\d to {image['width']}×"
                        rf"{image['height']} px and reduced to 256 colours "
                        r"\(limits 1568 px a side, 300 KiB\)", note), note


def test_tall_figure_longest_side_is_the_limit(plot_kernel):
    reply = plot_kernel.execute(
        "fig = plt.figure(figsize=(3, 50), dpi=100)\n"
        "fig.add_axes([0, 0, 1, 1]).plot([0, 1])")
    image = reply["images"][0]
    _decode(image)
    assert 1566 <= image["height"] <= 1568 and image["width"] < 120, image
    assert re.fullmatch(rf"image 1: downscaled from 3\d\d×50\d\d to {image['width']}×"
                        rf"{image['height']} px \(limit 1568 px a side\)", reply["notes"][0])


def test_small_figure_is_untouched(plot_kernel):
    code = "plt.figure(figsize=(4, 3), dpi=100).add_axes([0, 0, 1, 1]).plot([0, 1])"
    reply = plot_kernel.execute(code)
    assert reply["notes"] == []
    assert reply["images"][0]["width"] < 500  # 400 px and the tick labels
    big_caps = {"image_max_side": 16384, "image_max_bytes": 4 << 20}
    assert plot_kernel.execute(code, limits=big_caps)["images"] == reply["images"]


# The capture draws a figure once and crops it to its content; savefig(bbox_inches="tight") is
# the reference. Each cell below saves its figure tight itself and prints that size.
_TIGHT_SIZE = ("_b = io.BytesIO()\nfig.savefig(_b, format='png', bbox_inches='tight')\n"
               "print(*PIL.Image.open(_b).size)\n")


def _captured_and_tight(kernel, code):
    reply = kernel.execute("import io, PIL.Image\n" + code + "\n" + _TIGHT_SIZE)
    assert reply["status"] == "ok", reply["error"]
    [image] = reply["images"]
    with PIL.open(io.BytesIO(_decode(image))) as img:
        img.load()
        pixels = img.copy()
    return pixels, tuple(int(n) for n in reply["stdout"].split())


def test_labels_at_the_canvas_edge_are_whole(plot_kernel):
    # At 80 dpi the y label's box starts a fraction of a pixel inside the canvas' left edge, and
    # the text at the right ends a few pixels before the right one: both are inside, so the one
    # render is cropped (RGB: opaque, no alpha channel to compress), with nothing cut.
    img, tight = _captured_and_tight(plot_kernel, (
        "fig, ax = plt.subplots(figsize=(4, 3), dpi=80)\n"
        "ax.plot([1, 3, 2, 4])\n"
        "ax.set_ylabel('a y label at the very edge')\n"
        "fig.text(0.97, 0.5, 'x')"))
    assert img.mode == "RGB"
    assert abs(img.width - tight[0]) <= 2 and abs(img.height - tight[1]) <= 2, (img.size, tight)
    assert img.getpixel((0, img.height // 2)) == (255, 255, 255)  # padded like the tight box


def test_label_past_the_canvas_edge_is_saved_tight(plot_kernel):
    # At 100 dpi with wider tick labels the y label lies wholly left of the canvas.
    img, tight = _captured_and_tight(plot_kernel, (
        "fig, ax = plt.subplots(figsize=(4, 3), dpi=100)\n"
        "ax.plot([1, 3, 2])\n"
        "ax.set_ylabel('a y label')\n"
        "ax.set_yticks([1, 2, 3], ['one', 'two', 'three'])"))
    assert img.size == tight


@pytest.mark.parametrize("outside", [
    # A legend crossing the right edge, or wholly past it; an inset axes wholly past it.
    "ax.legend(bbox_to_anchor=(1.02, 1), loc='upper left')",
    "ax.legend(bbox_to_anchor=(1.6, 1), loc='upper left')",
    "ax.inset_axes([1.5, 0.2, 0.3, 0.3]).plot([1, 2])",
])
def test_what_reaches_past_the_canvas_is_kept_whole(plot_kernel, outside):
    # The tight save decides the box.
    img, tight = _captured_and_tight(plot_kernel, (
        "fig, ax = plt.subplots(figsize=(4, 3), dpi=100)\n"
        "ax.plot([1, 3, 2], label='a line with a long name')\n" + outside))
    assert img.size == tight
    assert img.width > 400


def test_transparent_figure_stays_transparent(plot_kernel):
    img, tight = _captured_and_tight(plot_kernel, (
        "fig, ax = plt.subplots(figsize=(4, 3), dpi=100)\n"
        "ax.plot([1, 3, 2])\n"
        "fig.patch.set_alpha(0)\n"
        "ax.patch.set_alpha(0)"))
    assert abs(img.width - tight[0]) <= 2 and abs(img.height - tight[1]) <= 2, (img.size, tight)
    assert img.mode == "RGBA"
    assert img.getpixel((0, 0))[3] == 0
    assert img.getpixel((img.width // 2, img.height // 2))[3] == 0  # inside the axes


def test_coloured_facecolor_is_the_background(plot_kernel):
    img, tight = _captured_and_tight(plot_kernel, (
        "fig, ax = plt.subplots(figsize=(4, 3), dpi=100, facecolor='#203040')\n"
        "ax.plot([1, 3, 2])\n"
        "ax.set_title('a title')"))
    assert abs(img.width - tight[0]) <= 2 and abs(img.height - tight[1]) <= 2, (img.size, tight)
    for corner in ((0, 0), (img.width - 1, img.height - 1)):
        assert img.getpixel(corner)[:3] == (0x20, 0x30, 0x40)


def test_figure_without_pixels_at_the_edge_but_a_non_uniform_face_is_saved_tight(plot_kernel):
    img, tight = _captured_and_tight(plot_kernel, (
        "fig, ax = plt.subplots(figsize=(4, 3), dpi=100)\n"
        "ax.plot([1, 3, 2])\n"
        "fig.figimage(np.linspace(0, 1, 400 * 300).reshape(300, 400))"))
    assert img.size == tight


def test_pil_image_downscaled_with_lanczos(plot_kernel):
    # Stripes one pixel wide: nearest neighbour would keep them black and white, Lanczos
    # averages them to grey.
    reply = plot_kernel.execute(
        "from PIL import Image\n"
        "stripes = Image.new('L', (3000, 2000))\n"
        "stripes.putdata([255 * (i % 2) for i in range(3000)] * 2000)\n"
        "stripes")
    image = reply["images"][0]
    assert (image["width"], image["height"]) == (1568, 1045)
    assert reply["notes"] == [
        "image 1: downscaled from 3000×2000 to 1568×1045 px (limit 1568 px a side)"]
    with PIL.open(io.BytesIO(_decode(image))) as img:
        low, high = img.crop((100, 100, 1400, 900)).getextrema()
    assert 40 < low and high < 215, (low, high)


def test_repr_png_object_is_downscaled(plot_kernel):
    reply = plot_kernel.execute(
        "from PIL import Image\n"
        "class Chart:\n"
        "    def _repr_png_(self):\n"
        "        buf = io.BytesIO()\n"
        "        Image.new('P', (2000, 100)).save(buf, 'PNG')\n"
        "        return buf.getvalue()\n"
        "import io\n"
        "display(Chart())",
        limits={"image_max_side": 500})
    image = reply["images"][0]
    _decode(image)
    assert (image["width"], image["height"]) == (500, 25)
    assert reply["notes"] == [
        "image 1: downscaled from 2000×100 to 500×25 px (limit 500 px a side)"]


def test_pixel_cap(plot_kernel):
    reply = plot_kernel.execute(
        "from PIL import Image\ndisplay(Image.new('L', (1000, 500)))\n"
        "plt.figure(figsize=(10, 5), dpi=100).add_axes([0, 0, 1, 1]).plot([0, 1])",
        limits={"image_max_pixels": 20_000})
    assert len(reply["images"]) == 2
    for image in reply["images"]:
        _decode(image)
        assert image["width"] * image["height"] <= 20_000
    assert reply["images"][0]["width"] > reply["images"][0]["height"]


def test_images_over_max_are_saved_to_output_dir(plot_kernel, tmp_path):
    out = tmp_path / "outputs"
    reply = plot_kernel.execute(
        "for i in range(5):\n"
        "    plt.figure(figsize=(1 + i, 1), dpi=40).add_axes([0, 0, 1, 1]).plot([0, i])",
        limits={"max_images": 2}, output_dir=str(out), execution_count=41)
    assert len(reply["images"]) == 2
    saved = reply["saved_images"]
    assert len(saved) == 3
    widths = []
    for path, number in zip(saved, (3, 4, 5)):
        assert os.path.dirname(path) == str(out)
        assert re.fullmatch(rf"\d{{8}}-\d{{6}}-cell41-image{number}\.png", os.path.basename(path))
        with PIL.open(path) as img:
            widths.append(img.size[0])
    # Saved in order, after the two inline ones: figures 3, 4, 5 grow in width.
    assert reply["images"][1]["width"] < widths[0] < widths[1] < widths[2]
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in saved)
    # Outside the working directory the path is shown as it is.
    stem = saved[0][:-len("3.png")]
    assert reply["notes"] == [
        f"3 more images not shown (max_images 2): saved as {stem}{{3..5}}.png"]


def test_ten_figures_five_inline_one_note_in_workspace_spelling(plot_kernel):
    out = os.path.join(plot_kernel.workdir, ".mcp-executor", "outputs")
    reply = plot_kernel.execute(
        "for i in range(10):\n"
        "    plt.figure(figsize=(2, 2), dpi=30).add_axes([0, 0, 1, 1]).plot([0, i])",
        limits={"max_images": 5}, output_dir=out, execution_count=7)
    assert len(reply["images"]) == 5
    saved = reply["saved_images"]
    assert [os.path.basename(p)[16:] for p in saved] == \
        [f"cell7-image{k}.png" for k in range(6, 11)]
    for path in saved:
        assert os.path.dirname(path) == out and os.path.isfile(path)
    stamp = os.path.basename(saved[0])[:15]
    assert reply["notes"] == [
        "5 more images not shown (max_images 5): saved as "
        f"/workspace/.mcp-executor/outputs/{stamp}-cell7-image{{6..10}}.png"]


def test_two_saved_images_are_listed(plot_kernel, tmp_path):
    reply = plot_kernel.execute("plt.figure(); plt.figure(); plt.figure()",
                                limits={"max_images": 1}, output_dir=str(tmp_path))
    stem = reply["saved_images"][0][:-len("2.png")]
    assert reply["notes"] == [f"2 more images not shown (max_images 1): saved as {stem}{{2,3}}.png"]


def test_image_max_side_is_validated(plot_kernel):
    for bad in (15, 0, -1, "1568", 1568.0, True):
        reply = plot_kernel.request("execute", code="1", limits={"image_max_side": bad})
        assert reply["type"] == "error" and reply["error"]["type"] == "BadRequest", reply
        assert reply["error"]["message"] == \
            f"limits.image_max_side must be an integer >= 16, got {bad!r}"
    assert plot_kernel.execute("1", limits={"image_max_side": 16})["result"] == "1"


def test_overflow_without_writable_output_dir_is_a_note(plot_kernel, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    reply = plot_kernel.execute("plt.plot([1]); plt.figure(); plt.plot([2])",
                                limits={"max_images": 1}, output_dir=str(blocker / "sub"))
    assert reply["status"] == "ok"
    assert len(reply["images"]) == 1 and reply["saved_images"] == []
    assert any("cannot save" in note for note in reply["notes"]), reply["notes"]


def test_prepared_font_cache_is_used_unchanged(plot_kernel, mpl_cache):
    info = plot_kernel.request("info")
    assert info["mpl_cache_files"] >= 1
    config_dir = info["mpl_config_dir"]
    names = [n for n in os.listdir(mpl_cache) if n.startswith("fontlist-")]
    assert names
    for name in names:
        # The kernel copies with mtimes kept; a rebuild by matplotlib would rewrite the file.
        src = os.stat(os.path.join(mpl_cache, name))
        dst = os.stat(os.path.join(config_dir, name))
        assert int(dst.st_mtime) == int(src.st_mtime)
    reply = plot_kernel.execute("import matplotlib\nmatplotlib.get_cachedir()")
    assert reply["result"] == repr(config_dir)


def test_lazy_matplotlib_import_uses_kernel_backend(kernel_factory):
    kernel = kernel_factory()  # no preload, no cache
    reply = kernel.execute(
        "import matplotlib\nimport matplotlib.pyplot as plt\n"
        "plt.plot([1, 2]); plt.show()\nmatplotlib.get_backend()")
    assert reply["result"] == "'module://mcpx_mpl_backend'"
    assert len(reply["images"]) == 1
    assert "Warning" not in reply["stderr"], reply["stderr"]


def test_prepare_mpl_cache_usage_error():
    run = subprocess.run([PYTHON, os.path.join(KERNEL_DIR, "prepare_mpl_cache.py")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "usage" in run.stderr
