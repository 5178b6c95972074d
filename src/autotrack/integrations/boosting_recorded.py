"""What an XGBoost or LightGBM run records (the README table is generated from this; tests
check real runs against it). `*` is any text, <eval> an evaluation set's name."""

from __future__ import annotations


def recorded(importance_types: str, model_file: str) -> dict[str, dict[str, str]]:
    return {
        "params": {
            "*": "every booster param as the library resolved it (defaults included), the "
            "wrapper's get_params(), num_boost_round and the train/cv arguments",
            "eval_names": "evaluation set names",
            "early_stopping_*": "early-stopping settings (rounds, metric, min_delta...)",
        },
        "metrics": {
            "<eval>-<metric>": "every evaluation metric on every evaluation set, step = "
            "iteration (`validation_0-logloss`, `valid_1-auc`); cv: `-mean` and `-std`",
            "best_iteration": "early stopping: the best iteration",
            "best_score": "and its score",
            "stopped_iteration": "where training stopped",
            "best_<eval>-<metric>": "every metric at the best iteration",
            "<eval>_*": "sklearn wrappers: the scikit-learn metric suite on the last "
            "evaluation set (else `training_*`)",
        },
        "tags": {
            "estimator_name": "sklearn wrappers: the class name",
            "estimator_class": "its full import path",
            "dataset.<context>.*": "dataset fingerprints: digest, shape",
        },
        "artifacts": {
            "model/": f"the booster ({model_file}), signature, input example, requirements",
            "feature_importance_*": f"JSON and bar plot per importance type ({importance_types})",
            "<eval>_confusion_matrix.*": "sklearn wrappers: `.png` and `.json`",
            "<eval>_roc_curve.*": "classifier wrappers: `.png` and `.json`",
            "<eval>_precision_recall_curve.*": "classifier wrappers: `.png` and `.json`",
            "<eval>_prediction_error.*": "regressor wrappers: `.png` and `.json`",
            "datasets/<context>.json": "dataset fingerprints",
            "cv_results.json": "cv: the full evaluation history",
        },
    }
