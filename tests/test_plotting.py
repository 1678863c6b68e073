"""Figures whose labels can be read: a figure title never covers the pictures' titles, long labels wrap."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
from editlab import plotting


def _extent(fig, artist):
    fig.canvas.draw()
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_a_figure_title_sits_above_every_picture_title():
    pictures = [np.zeros((32, 32, 3), np.uint8)] * 6
    fig = plotting.grid(pictures, [f"a long title of picture {i} that wraps onto two lines" for i in range(6)],
                        ncols=3, title="a figure title long enough to need wrapping over the whole width of the grid")
    suptitle = _extent(fig, fig._suptitle)
    highest_title = max(_extent(fig, ax.title).y1 for ax in fig.axes)
    assert suptitle.y0 > highest_title  # display coordinates: y grows upwards
    assert suptitle.y1 <= fig.bbox.y1 + 1  # and inside the figure


def test_long_row_labels_wrap():
    pictures = [np.zeros((32, 32, 3), np.uint8)] * 2
    fig = plotting.grid(pictures, ncols=1, wrap=10, row_labels=["a label far longer than ten letters", "short"])
    assert fig.axes[0].get_ylabel().count("\n") >= 2
    assert fig.axes[1].get_ylabel() == "short"


def test_titles_keep_their_line_breaks_and_break_long_names_after_underscores():
    assert plotting.wrap_lines("reconstruction, w = 1.0\n16.8 dB", 28) == ["reconstruction, w = 1.0", "16.8 dB"]
    assert plotting.wrap_lines("change_attribute_content: cat", 18) == ["change_attribute_", "content: cat"]
    assert plotting.wrap_lines("a b c", 28) == ["a b c"]
    assert plotting.wrap_lines("", 10) == []
    assert all(len(line) <= 6 for line in plotting.wrap_lines("abcdefghijklmnop", 6))  # no break point: cut


def test_a_title_with_a_line_break_is_drawn_on_two_lines():
    fig = plotting.grid([np.zeros((32, 32, 3), np.uint8)], ["reconstruction\n16.8 dB"], ncols=1)
    assert fig.axes[0].get_title() == "reconstruction\n16.8 dB"


def test_an_empty_cell_keeps_its_row_label_and_draws_nothing():
    picture = np.zeros((32, 32, 3), np.uint8)
    fig = plotting.grid([picture, picture, None, picture], ncols=2, row_labels=["first", "second"])
    assert fig.axes[2].get_ylabel() == "second"
    assert not fig.axes[2].get_images() and len(fig.axes[3].get_images()) == 1


def test_the_second_rows_titles_stay_clear_of_the_first_rows_pictures():
    pictures = [np.zeros((128, 128, 3), np.uint8)] * 8
    fig = plotting.grid(pictures, [f"from step {s}: running, 3/3 kept" for s in range(8)], ncols=4, cell=1.9, fontsize=8,
                        title="a title over the whole figure")
    assert _extent(fig, fig.axes[4].title).y1 < _extent(fig, fig.axes[0]).y0
