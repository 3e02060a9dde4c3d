"""A plotext figure rendered into a Static: line plots (training curves) and scatter plots (fronts).

plotext keeps one global figure, so plots are built on the UI thread only (a few ms each) and
only when the data or the widget size changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Static


@dataclass
class Series:
    """One signal: points, a label, and whether to join them with lines."""

    label: str
    x: list[float]
    y: list[float]
    lines: bool = True
    marker: str | None = None
    right: bool = False  # against the right-hand y axis (e.g. a loss beside accuracies)


@dataclass
class Figure:
    title: str = ""
    series: list[Series] = field(default_factory=list)
    xlabel: str = ""
    ylabel: str = ""
    legend: bool = True


def render_figure(figure: Figure, width: int, height: int) -> str:
    """The figure as text with ANSI colours, `width` x `height` cells."""
    import plotext as plt

    fig = plt.figure
    fig.clear.all()
    fig.theme("dark")
    fig.plot_size(max(width, 20), max(height, 6))
    fig.legend(active=figure.legend)
    drawn = False
    for s in figure.series:
        if not s.x:
            continue
        signal = fig.signal(s.x, s.y, marker=s.marker, yside="right" if s.right else None).label(s.label)
        if s.lines and len(s.x) > 1:
            signal.lines()
        fig.draw(signal)
        drawn = True
    if figure.title:
        fig.title(figure.title)
    if figure.xlabel:
        fig.label(figure.xlabel, axis=0)
    if figure.ylabel:
        fig.label(figure.ylabel, axis=1)
    if not drawn:
        return f"{figure.title}\n(no data yet)"
    return fig.build().string()


class PlotView(Static):
    """Shows a `Figure`; redraws on new data or resize, never more."""

    DEFAULT_CSS = """
    PlotView { height: 1fr; min-height: 8; }
    """

    def __init__(self, figure: Figure | None = None, **kwargs) -> None:
        super().__init__("", **kwargs)
        self._figure = figure or Figure()
        self._drawn_for: tuple | None = None

    def plot(self, figure: Figure) -> None:
        self._figure = figure
        self._drawn_for = None
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        width, height = self.content_size
        if width <= 0 or height <= 0:
            return
        key = (width, height, id(self._figure))
        if key == self._drawn_for:
            return
        self._drawn_for = key
        self.update(Text.from_ansi(render_figure(self._figure, width, height)))
