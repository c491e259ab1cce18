"""matplotlib and images: figures become PNGs, show()/display() order, caps, overflow, cache."""

import base64
import io
import os
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
    full = plot_kernel.execute(code)["images"][0]
    assert full["bytes"] > 300_000, "the test image must be over the cap before scaling"
    reply = plot_kernel.execute(code, limits={"image_max_bytes": 300_000})
    image = reply["images"][0]
    _decode(image)
    assert image["bytes"] <= 300_000
    assert image["width"] < full["width"] and image["height"] < full["height"]


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
        limits={"max_images": 2}, output_dir=str(out))
    assert len(reply["images"]) == 2
    saved = reply["saved_images"]
    assert len(saved) == 3
    widths = []
    for path in saved:
        assert os.path.dirname(path) == str(out)
        with PIL.open(path) as img:
            widths.append(img.size[0])
    # Saved in order, after the two inline ones: figures 3, 4, 5 grow in width.
    assert reply["images"][1]["width"] < widths[0] < widths[1] < widths[2]
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in saved)


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
