"""The one writer of every figure: `save_figure`."""

import sys

from matplotlib.figure import Figure

from advjax import _files


def save_figure(fig: Figure, path, *, dpi: int = 110) -> str:
  """Writes `fig` to `path` as a PNG, atomically, and releases it from pyplot.

  The one writer of figures in advjax: evaluation reports, `experiments.compare`,
  `experiments.make_results` and the notebooks all build a Figure and hand it here. The
  PNG goes to a temporary file in the same folder, renamed over `path` once complete, so
  a reader never sees a half-written image and a crash leaves the earlier file (or none).
  The figure is written as its builder laid it out (no `tight_layout` here). A figure
  that pyplot manages is closed; advjax's figures are plain `Figure` objects that no
  global registry holds, freed when the caller drops them.

  Args:
    fig: a matplotlib Figure (from an `advjax.plots` function or your own).
    path: the PNG path; its folder must exist.
    dpi: resolution in dots per inch.

  Returns:
    `path`, as a string.
  """
  try:
    return _files.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
  finally:
    pyplot = sys.modules.get("matplotlib.pyplot")  # loaded only if someone used pyplot
    if pyplot is not None:
      pyplot.close(fig)  # a no-op for figures pyplot does not manage
