"""What an HVM guest's monitor shows: the VGA text screen or the mode 13h picture.

``draw_vga(lab, "name")`` draws what the guest's VGA shows now, as QEMU's window
would: the 320x200 picture of mode 13h through the DAC's palette (each pixel
square, as QEMU doubles it to 640x400), or the 80x25 text screen as text. Other
graphics modes are named but not drawn (``xenlab/devicemodel/vga.py`` says why).

Real Xen: QEMU ui/console.c (what ``xl vncviewer`` or the SDL window shows)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xenlab.lab import Lab

__all__ = ["draw_vga"]


def draw_vga(lab: Lab, name: str, ax: Axes | None = None) -> Figure:
    """The domain ``name``'s VGA as a figure (its device model's video memory and
    registers, read now); a UsageError for a domain without VGA."""
    from xenlab.errors import UsageError

    domid = lab.domain(name).domid
    dm = lab.toolstack.device_models.get(domid)
    if dm is None or dm.vga is None:
        raise UsageError(f"draw_vga(): {name} has no VGA (an HVM guest with vga = \"stdvga\")")
    vga = dm.vga
    if ax is None:
        fig = Figure(figsize=(6.4, 4.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    mode = vga.mode()
    ax.set_xticks([])
    ax.set_yticks([])
    if mode == "13h":
        ax.imshow(vga.rgb(), interpolation="nearest", aspect="auto")
        ax.set_title(f"{name}: VGA mode 13h, 320x200, 256 colours")
    elif mode == "text":
        ax.set_facecolor("black")
        ax.text(0.01, 0.99, vga.screen_text() or " ", family="monospace", fontsize=6,
                color="#aaaaaa", va="top", ha="left", transform=ax.transAxes)
        ax.set_title(f"{name}: VGA text mode, 80x25")
    else:
        ax.set_title(f"{name}: a VGA graphics mode xenlab does not draw")
    return fig
