"""Server-side SVG charts (pygal): nothing for the browser to fetch, readable without JavaScript."""

import pygal
from pygal.style import Style

STYLE = Style(background="white", plot_background="white", foreground="#222", foreground_strong="#000",
              foreground_subtle="#555", colors=("#b00020", "#8a5a00"), font_family="sans-serif")


def _config(**extra):
    # js=[]: pygal's default links a tooltip script from the internet; hospital networks have none.
    return {"js": [], "style": STYLE, "height": 260, "width": 640, "explicit_size": False,
            "disable_xml_declaration": True, "print_values": False, **extra}


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
    for code, count in reversed(codes):
        chart.add(code, [{"value": count, "label": code}])
    chart.x_labels = [c for c, _ in reversed(codes)]
    return chart.render(is_unicode=True)
