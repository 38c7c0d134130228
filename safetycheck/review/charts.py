"""Server-side SVG charts (pygal): nothing for the browser to fetch, readable without JavaScript."""

import sys

import pygal
from pygal.style import Style

# pygal installs an import hook for its map plugins (pygal.maps.*), which we do not use; it lacks
# find_spec, so every later import in the process warns. Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__name__ != "PluginImportFixer"]

STYLE = Style(background="white", plot_background="white", foreground="#222", foreground_strong="#000",
              foreground_subtle="#555", colors=("#b00020", "#8a5a00"), font_family="sans-serif")


def _config(**extra):
    # js=[]: pygal's default links a tooltip script from the internet; hospital networks have none.
    return {"js": [], "style": STYLE, "height": 260, "width": 640, "explicit_size": False,
            "disable_xml_declaration": True, "print_values": False, "min_scale": 1, "max_scale": 10, **extra}


def flagged_per_day(days: list[dict]) -> str:
    """Stacked bars: checks per day whose verdict was block or review."""
    chart = pygal.StackedBar(**_config(title="Flagged checks per day", x_label_rotation=30,
                                       legend_at_bottom=True))
    chart.x_labels = [d["day"] for d in days]
    chart.add("block", [d["block"] or 0 for d in days])
    chart.add("review", [d["review"] or 0 for d in days])
    return chart.render(is_unicode=True)


def top_codes(codes: list[tuple[str, int]]) -> str:
    """Horizontal bars: the most frequent warning codes."""
    chart = pygal.HorizontalBar(**_config(title="Most frequent warning codes", show_legend=False,
                                          colors=("#1f4e79",)))
    ordered = list(reversed(codes))  # the most frequent at the top
    chart.x_labels = [code for code, _ in ordered]
    chart.add("checks", [count for _, count in ordered])
    return chart.render(is_unicode=True)
