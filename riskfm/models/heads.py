"""Prediction heads and their losses; every loss ignores unknown (NaN) labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from riskfm.data.manifest import STENOSIS_TARGETS


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, int]:
    """Return the mean BCE-with-logits over known labels and their number.

    Parameters
    ----------
    logits : Tensor [B] or [B, K]
        Raw logits.
    labels : Tensor, same shape as ``logits``
        0/1 labels; NaN marks an unknown label, which is left out.
    pos_weight : Tensor [K] or [1], optional
        Weight of the positive class, broadcast over the batch.

    Returns
    -------
    loss : Tensor []
        Mean loss over known labels (a graph-connected zero when none is known).
    n : int
        Number of known labels.
    """
    known = ~torch.isnan(labels)
    n = int(known.sum())
    if n == 0:
        return logits.sum() * 0.0, 0  # keeps the graph (and DDP's gradient sync) intact
    pw = None
    if pos_weight is not None:
        pw = pos_weight.expand_as(logits)[known]
    loss = F.binary_cross_entropy_with_logits(logits[known].float(), labels[known].float(), pos_weight=pw)
    return loss, n


def cox_partial_likelihood(log_hazard: torch.Tensor, time: torch.Tensor, event: torch.Tensor
                           ) -> tuple[torch.Tensor, int]:
    """Return the negative Cox partial log-likelihood (Breslow ties) and the number of events.

    Only patients with known time and event count. Within a batch the risk set of an event is every
    patient of the batch whose time is >= its time.

    Parameters
    ----------
    log_hazard : Tensor [B]
        Predicted log hazard ratios.
    time : Tensor [B]
        Time to event or censoring, in days (NaN unknown).
    event : Tensor [B]
        1 for an event, 0 for censoring (NaN unknown).

    Returns
    -------
    loss : Tensor []
        Loss averaged over events (a graph-connected zero when the batch has none).
    n_events : int
        Number of events among the known patients.
    """
    known = ~(torch.isnan(time) | torch.isnan(event))
    lh, t, e = log_hazard[known].float(), time[known], event[known]
    n_events = int(e.sum())
    if n_events == 0:
        return log_hazard.sum() * 0.0, 0
    order = torch.argsort(t, descending=True)
    lh, t, e = lh[order], t[order], e[order]
    log_risk = torch.logcumsumexp(lh, dim=0)
    # Breslow ties: every tied patient belongs to the risk set of the tied events.
    _, inverse, counts = torch.unique_consecutive(t, return_inverse=True, return_counts=True)
    last_of_group = torch.cumsum(counts, 0) - 1
    log_risk = log_risk[last_of_group[inverse]]
    loss = -((lh - log_risk) * e).sum() / n_events
    return loss, n_events


class StenosisHead(nn.Module):
    """Severe (>= 70%) stenosis per artery: 4 logits in the order RCA, LM, LAD, LCX."""

    name = "stenosis"
    targets = STENOSIS_TARGETS

    def __init__(self, in_dim: int, pos_weight: list[float] | None = None) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, len(self.targets))
        # A buffer even when unweighted (ones), so a saved model reloads without knowing its training labels.
        pw = torch.ones(len(self.targets)) if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float32)
        self.register_buffer("pos_weight", pw)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return the per-artery logits.

        Parameters
        ----------
        z : Tensor [B, in_dim]
            Fused features.

        Returns
        -------
        Tensor [B, 4]
            Logits of severe stenosis, columns in :attr:`targets` order.
        """
        return self.linear(z)

    def loss(self, out: torch.Tensor, batch: dict) -> tuple[torch.Tensor, int]:
        """Return the weighted BCE over known labels of ``batch["stenosis"]`` [B, 4] and their number."""
        return masked_bce(out, batch["stenosis"].to(out.device), self.pos_weight)

    def probabilities(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return target -> probability [B] from the logits ``out`` [B, 4]."""
        p = torch.sigmoid(out.float())
        return {t: p[:, i] for i, t in enumerate(self.targets)}

    def labels(self, batch: dict) -> dict[str, torch.Tensor]:
        """Return target -> label [B] (0/1, NaN unknown) from ``batch["stenosis"]``."""
        return {t: batch["stenosis"][:, i] for i, t in enumerate(self.targets)}


class _OneLogitHead(nn.Module):
    """A linear read-out of one value per patient from the fused features (``self.linear``)."""

    linear: nn.Linear

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return one value per patient.

        Parameters
        ----------
        z : Tensor [B, in_dim]
            Fused features.

        Returns
        -------
        Tensor [B]
            The head's logit (outcome logit, or log hazard ratio for the survival head).
        """
        return self.linear(z).squeeze(1)


class BinaryHead(_OneLogitHead):
    """One binary outcome such as ``mace_30d`` (a logit)."""

    def __init__(self, in_dim: int, target: str = "mace_30d", pos_weight: float | None = None) -> None:
        super().__init__()
        self.name = target
        self.targets = (target,)
        self.linear = nn.Linear(in_dim, 1)
        self.register_buffer("pos_weight", torch.tensor([1.0 if pos_weight is None else float(pos_weight)]))

    def loss(self, out: torch.Tensor, batch: dict) -> tuple[torch.Tensor, int]:
        """Return the weighted BCE over known labels of ``batch[self.name]`` [B] and their number."""
        return masked_bce(out, batch[self.name].to(out.device), self.pos_weight)

    def probabilities(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{target: probability [B]}`` from the logits ``out`` [B]."""
        return {self.name: torch.sigmoid(out.float())}

    def labels(self, batch: dict) -> dict[str, torch.Tensor]:
        """Return ``{target: label [B]}`` (0/1, NaN unknown)."""
        return {self.name: batch[self.name]}


class SurvivalHead(_OneLogitHead):
    """Time to event: a log hazard ratio trained by the Cox partial likelihood.

    Its "probability" output is ``sigmoid(log hazard)``, a monotone risk score (its ranking, not its
    value, is meaningful), reported under the target ``risk_score``.
    """

    name = "survival"
    targets = ("risk_score",)

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, 1, bias=False)  # the partial likelihood has no intercept

    def loss(self, out: torch.Tensor, batch: dict) -> tuple[torch.Tensor, int]:
        """Return the Cox loss of ``out`` [B] on ``time_to_event_days``/``event`` and the event count."""
        return cox_partial_likelihood(out, batch["time_to_event_days"].to(out.device), batch["event"].to(out.device))

    def probabilities(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"risk_score": sigmoid(out) [B]}``, a monotone risk score rather than a probability."""
        return {"risk_score": torch.sigmoid(out.float())}

    def labels(self, batch: dict) -> dict[str, torch.Tensor]:
        """Return ``{"risk_score": event [B]}`` (0/1, NaN unknown)."""
        return {"risk_score": batch["event"]}


HEADS = {"stenosis": StenosisHead, "mace_30d": BinaryHead, "survival": SurvivalHead}


def build_head(target: str, in_dim: int, **kwargs) -> nn.Module:
    """Build the head of a config target: ``stenosis``, ``mace_30d`` (or any binary column), ``survival``."""
    if target == "stenosis":
        return StenosisHead(in_dim, **kwargs)
    if target == "survival":
        return SurvivalHead(in_dim)
    return BinaryHead(in_dim, target=target, **kwargs)
