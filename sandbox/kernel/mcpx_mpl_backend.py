"""matplotlib backend of the kernel (MPLBACKEND=module://mcpx_mpl_backend): Agg rendering, and
plt.show() / fig.show() hand figures to the running cell as images instead of warning that Agg
cannot show them."""

from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

import mcpx_display


class FigureManager(FigureManagerBase):
    def show(self):
        mcpx_display.show_figures([self.canvas.figure])


class FigureCanvas(FigureCanvasAgg):
    manager_class = FigureManager


def show(*args, **kwargs):
    del args, kwargs  # block= and friends mean nothing without a GUI
    mcpx_display.show_figures()
