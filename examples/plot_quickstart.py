"""
Fit, predict and explain by feature family
==========================================

A FusionClassifier on the embedded synthetic set (240 images of 80 made-up patients): fit on
some patients, score the others, and see which feature families drove the scores. Real data
loads the same way (``melagbm.datasets.load_ham10000``, ``load_isic2020``).
"""

import matplotlib.pyplot as plt
from sklearn.model_selection import GroupShuffleSplit

from melagbm import FusionClassifier
from melagbm.datasets import make_synthetic
from melagbm.explain.plots import plot_importance

X, y, groups = make_synthetic(240, random_state=0)
train, test = next(GroupShuffleSplit(test_size=0.3, random_state=0).split(X, y, groups))  # split by patient
clf = FusionClassifier(backbone="tf_efficientnet_lite0", cache=None, random_state=0, verbose=0)
clf.fit(X.iloc[train], y.iloc[train], groups=groups.iloc[train])

# %%
# Each booster column is named ``family__feature``, and the step that made it names its family.
print(clf.feature_families_)

# %%
# Calibrated melanoma probabilities of the held-out patients, and the referral at the threshold
# that reached 90 % sensitivity out of fold.
print(clf.predict_proba(X.iloc[test])[:5, 1].round(3), clf.threshold_)

# %%
# Mean |SHAP| per family on the held-out patients, with bootstrap intervals over patients.
importance = clf.feature_importance(X.iloc[test], groups.iloc[test], n_bootstrap=200)
print(importance.round(3))
plot_importance(importance, show=False)
plt.tight_layout()
