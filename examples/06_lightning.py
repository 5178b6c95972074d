"""A Lightning model with validation and early stopping."""

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autotrack

autotrack.autolog()
L.seed_everything(0, verbose=False)


class Classifier(L.LightningModule):
    def __init__(self, hidden: int = 16, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(30, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.loss = nn.BCEWithLogitsLoss()

    def training_step(self, batch, _):
        x, y = batch
        loss = self.loss(self.net(x), y)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", self.loss(logits, y))
        self.log("val_acc", ((logits > 0).float() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


X, y = load_breast_cancer(return_X_y=True)
X = torch.tensor(StandardScaler().fit_transform(X), dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
train = DataLoader(TensorDataset(X[:400], y[:400]), batch_size=32, shuffle=True)
valid = DataLoader(TensorDataset(X[400:], y[400:]), batch_size=64)

trainer = L.Trainer(
    max_epochs=10,
    callbacks=[EarlyStopping("val_loss", patience=3)],
    logger=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    enable_checkpointing=False,
)
model = Classifier()
trainer.fit(model, train, valid)
print("validation:", trainer.validate(model, dataloaders=valid, verbose=False))
