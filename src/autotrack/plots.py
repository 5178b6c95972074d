"""Figures for evaluation results, drawn with scikit-learn's own `*Display` classes onto
matplotlib object-oriented Figures with an Agg canvas.

Nothing here touches pyplot: the user's current figure, backend and rcParams stay as they
were, no window opens, and drawing is safe on autotrack's background thread. matplotlib and
scikit-learn are imported on first use only.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from autotrack.evaluation import Curve, Evaluation
    from autotrack.tracking import RunHandle

DPI = 100


def new_figure(width: float = 6.0, height: float = 5.0) -> Figure:
    """A Figure bound to its own Agg canvas, invisible to pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _name_kwarg(display_class: type, value: str) -> dict[str, str]:
    """Display classes took `estimator_name` before scikit-learn 1.7 renamed it `name`."""
    parameters = inspect.signature(display_class).parameters
    return {"name": value} if "name" in parameters else {"estimator_name": value}


def confusion_matrix_figure(counts: Sequence[Sequence[int]], labels: Sequence[Any], title: str):
    """Counts with true labels on rows; sized to stay readable with many classes."""
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    matrix = np.asarray(counts)
    side = min(4.0 + 0.4 * len(matrix), 16.0)
    figure = new_figure(side + 1.0, side)
    ax = figure.add_subplot()
    display = ConfusionMatrixDisplay(matrix, display_labels=[str(v) for v in labels] or None)
    display.plot(ax=ax, colorbar=True, include_values=len(matrix) <= 30, values_format="d")
    ax.set_title(title)
    return figure


def roc_figure(curves: Sequence[Curve], title: str):
    """One line per curve (binary: the positive class; multiclass: one-vs-rest per class)."""
    import numpy as np
    from sklearn.metrics import RocCurveDisplay

    figure = new_figure()
    ax = figure.add_subplot()
    for curve in curves:
        label = _curve_label(curve, curves)
        display = RocCurveDisplay(
            fpr=np.asarray(curve.x),  # arrays: since 1.7 lists mean "several curves"
            tpr=np.asarray(curve.y),
            roc_auc=curve.area,
            **_name_kwarg(RocCurveDisplay, label),
        )
        display.plot(ax=ax)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set_title(title)
    return figure


def precision_recall_figure(curves: Sequence[Curve], title: str):
    """Precision against recall, area = average precision."""
    import numpy as np
    from sklearn.metrics import PrecisionRecallDisplay

    figure = new_figure()
    ax = figure.add_subplot()
    for curve in curves:
        label = _curve_label(curve, curves)
        display = PrecisionRecallDisplay(
            precision=np.asarray(curve.y),
            recall=np.asarray(curve.x),
            average_precision=curve.area,
            **_name_kwarg(PrecisionRecallDisplay, label),
        )
        display.plot(ax=ax)
    ax.set_title(title)
    return figure


def _curve_label(curve: Curve, curves: Sequence[Curve]) -> str:
    return f"class {curve.label}" + (" vs rest" if len(curves) > 1 else "")


def prediction_error_figure(y_true: Sequence[float], y_pred: Sequence[float], title: str):
    """Actual vs predicted, and residuals vs predicted, side by side."""
    import numpy as np
    from sklearn.metrics import PredictionErrorDisplay

    figure = new_figure(11.0, 5.0)
    left, right = figure.subplots(1, 2)
    display = PredictionErrorDisplay(y_true=np.asarray(y_true), y_pred=np.asarray(y_pred))
    display.plot(ax=left, kind="actual_vs_predicted")
    display.plot(ax=right, kind="residual_vs_predicted")
    figure.suptitle(title)
    return figure


def feature_importance_figure(
    names: Sequence[Any], values: Sequence[float], title: str, top: int = 20
):
    """Horizontal bars of the `top` features by absolute value, largest at the top."""
    import numpy as np

    numbers = np.asarray(values, dtype=float).ravel()
    labels = [str(n) for n in names]
    order = np.argsort(-np.abs(numbers), kind="stable")[:top][::-1]
    figure = new_figure(7.0, 1.5 + 0.3 * len(order))
    ax = figure.add_subplot()
    positions = np.arange(len(order))
    colours = ["tab:blue" if numbers[i] >= 0 else "tab:red" for i in order]
    ax.barh(positions, numbers[order], color=colours)
    ax.set_yticks(positions, [labels[i] for i in order])
    ax.axvline(0.0, color="black", linewidth=0.6)
    ax.set_title(title)
    return figure


# -- the plots of one evaluation, as artifacts -----------------------------------------------
def log_evaluation_plots(run: RunHandle, evaluation: Evaluation, prefix: str) -> None:
    """Each plot as `<prefix>_<plot>.png` next to its data, `<prefix>_<plot>.json`."""
    from autotrack.evaluation import jsonable

    drawn: dict[str, tuple[Any, dict[str, Any]]] = {}
    if evaluation.kind == "classifier":
        labels = [jsonable(v) for v in evaluation.labels]
        counts = evaluation.confusion_matrix
        if counts is not None:
            figure = confusion_matrix_figure(
                counts, evaluation.labels, f"{prefix}: confusion matrix"
            )
            drawn["confusion_matrix"] = (figure, {"labels": labels, "counts": counts})
        if evaluation.roc_curves:
            figure = roc_figure(evaluation.roc_curves, f"{prefix}: ROC curve")
            curves = [c.to_dict() for c in evaluation.roc_curves]
            drawn["roc_curve"] = (figure, {"x": "fpr", "y": "tpr", "curves": curves})
        if evaluation.pr_curves:
            figure = precision_recall_figure(
                evaluation.pr_curves, f"{prefix}: precision-recall curve"
            )
            curves = [c.to_dict() for c in evaluation.pr_curves]
            drawn["precision_recall_curve"] = (
                figure,
                {"x": "recall", "y": "precision", "curves": curves},
            )
    elif evaluation.prediction_points is not None:
        pairs = evaluation.prediction_points
        figure = prediction_error_figure(
            pairs["y_true"], pairs["y_pred"], f"{prefix}: prediction error"
        )
        drawn["prediction_error"] = (figure, pairs)
    for kind, (figure, data) in drawn.items():
        run.log_figure(figure, f"{prefix}_{kind}.png")
        run.log_dict(data, f"{prefix}_{kind}.json")
