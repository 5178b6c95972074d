"""An ElasticNet grid over alpha x l1_ratio on the diabetes data."""

from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import GridSearchCV, train_test_split

import autotrack

autotrack.autolog()

X, y = load_diabetes(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
grid = {"alpha": [0.001, 0.01, 0.1], "l1_ratio": [0.2, 0.5, 0.8]}
search = GridSearchCV(ElasticNet(max_iter=5000), grid, cv=5, scoring="neg_root_mean_squared_error")
search.fit(X_train, y_train)
print("test mse:", mean_squared_error(y_test, search.predict(X_test)))
