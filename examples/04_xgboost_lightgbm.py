"""XGBoost and LightGBM with an evaluation set and early stopping."""

import lightgbm as lgb
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import autotrack

autotrack.autolog()

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)

booster = xgb.XGBClassifier(n_estimators=300, learning_rate=0.1, early_stopping_rounds=20)
booster.fit(X_train, y_train, eval_set=[(X_train, y_train), (X_valid, y_valid)], verbose=False)
print("xgboost best iteration:", booster.best_iteration)

model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.1, verbose=-1)
model.fit(
    X_train,
    y_train,
    eval_set=[(X_train, y_train), (X_valid, y_valid)],
    callbacks=[lgb.early_stopping(20, verbose=False)],
)
print("lightgbm best iteration:", model.best_iteration_)
