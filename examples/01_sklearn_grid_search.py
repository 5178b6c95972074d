"""GridSearchCV over LogisticRegression's C on the breast cancer data."""

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import autotrack

autotrack.autolog()

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
search = GridSearchCV(pipeline, {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}, cv=5)
search.fit(X_train, y_train)
print("test accuracy:", accuracy_score(y_test, search.predict(X_test)))
