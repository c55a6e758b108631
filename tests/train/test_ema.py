import torch
from torch import nn

from riskfm.train.ema import ModelEMA


def test_ema_tracks_trainable_weights_only():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    for p in model[0].parameters():
        p.requires_grad_(False)  # a frozen encoder
    ema = ModelEMA(model, decay=0.9)
    start = model[2].weight.detach().clone()
    with torch.no_grad():
        model[2].weight.add_(1.0)
        model[0].weight.add_(5.0)  # frozen weights are not averaged
    model.train()(torch.randn(8, 3))  # moves batch-norm statistics
    ema.update(model)
    assert torch.allclose(ema.module[2].weight, 0.9 * start + 0.1 * model[2].weight)
    assert not torch.allclose(ema.module[0].weight, model[0].weight)
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    assert len(ema._pairs) == 4  # BN weight/bias + second linear weight/bias
