"""Attributions checked against references: IG completeness, hand-computed Grad-CAM, occlusion and
ablation differences, exact Shapley values, and the token-to-variable roll-up."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import ShapleyValues

from riskfm.clinical.text import serialise_clinical
from riskfm.explain import explain
from riskfm.explain.clinical import PROMPT_ROW, SPECIAL_ROW, variable_spans
from riskfm.explain.forward import ModalityForward, PatientContext, PresenceForward
from riskfm.explain.modalities import exact_shapley
from riskfm.explain.targets import resolve_target
from riskfm.models.fusion import ConcatFusion
from riskfm.models.heads import BinaryHead
from riskfm.models.risk_model import RiskModel

from .conftest import make_batch


def _output(model, batch, target="mace_30d"):
    t = resolve_target(model, target)
    with torch.no_grad():
        out = model(batch)[t.head]
    return out[:, t.index] if t.index is not None else out


def test_integrated_gradients_completeness(model, batch):
    """sum(attributions) = f(x) - f(flat line), with f evaluated by the full model on edited batches."""
    a = explain(model, batch, "ecg", "integrated_gradients", "stenosis_lad", n_steps=128)
    zeroed = dict(batch, ecg=torch.zeros_like(batch["ecg"]))
    expected = (_output(model, batch, "stenosis_lad") - _output(model, zeroed, "stenosis_lad")).numpy()
    sums = a.values.reshape(len(a), -1).sum(1)
    # ReLU networks are piecewise linear: the path integral converges with the number of steps
    np.testing.assert_allclose(sums, expected, rtol=0.03, atol=1e-4)
    deltas = np.array([p["delta"] for p in a.meta["patients"]])
    np.testing.assert_allclose(deltas, np.abs(sums - expected), atol=2e-6)  # Captum's delta is the same gap


def test_ct_integrated_gradients_equals_a_reference_path_integral(model, batch):
    """IG of the CT from the blurred scan, recomputed with autograd through the full model."""
    from scipy.ndimage import gaussian_filter

    n_steps = 8
    a = explain(model, batch, "ct", "integrated_gradients", "mace_30d", n_steps=n_steps, internal_batch_size=3)
    assert a.meta["patients"][0]["baseline"] == "blur"
    x = batch["ct"][1:2]
    base = torch.as_tensor(gaussian_filter(x.numpy(), sigma=(0, 0, 2, 2, 2), mode="nearest"))  # 6 mm at 3 mm
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    total = torch.zeros_like(x)
    for node, w in zip(nodes, weights):
        point = (base + 0.5 * (node + 1) * (x - base)).requires_grad_(True)
        cts = batch["ct"].clone()
        cts[1:2] = point
        out = model(dict(batch, ct=cts))["mace_30d"][1]
        grad, = torch.autograd.grad(out, point)
        total += 0.5 * w * grad
    ref = ((x - base) * total)[0].detach().numpy()
    np.testing.assert_allclose(a.values[1], ref, rtol=1e-3, atol=1e-8)


def test_ecg_gradcam_matches_a_hand_computed_gradcam(model, batch):
    a = explain(model, batch, "ecg", "gradcam", "mace_30d")
    layer = model.encoders["ecg"].gradcam_layer
    ctx = PatientContext(model, batch, 1)
    f = ModalityForward(ctx, "ecg", resolve_target(model, "mace_30d"))
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("act", o))
    try:
        out = f(batch["ecg"][1:2])
        grad, = torch.autograd.grad(out.sum(), store["act"])
    finally:
        handle.remove()
    weights = grad.mean(dim=2, keepdim=True)  # alpha_c: gradient averaged over time
    cam = F.relu((weights * store["act"]).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=batch["ecg"].shape[-1], mode="linear")[0, 0].detach().numpy()
    np.testing.assert_allclose(a.values[1, 0], cam, rtol=1e-4, atol=1e-7)
    assert np.allclose(a.values[1], a.values[1, :1])  # one time map shared by every lead
    assert a.meta["shared_over_leads"]


def test_ecg_occlusion_is_the_output_drop_of_each_window(model, batch):
    # window = stride: every sample is covered by exactly one window, so its value is that window's drop
    a = explain(model, batch, "ecg", "occlusion", "mace_30d", window_s=0.5, stride_s=0.5)
    win = a.meta["window_samples"]
    assert win == 50
    x = batch["ecg"].clone()
    lead, start = 4, 100
    occluded = x.clone()
    occluded[0, lead, start:start + win] = 0.0
    drop = (_output(model, batch) - _output(model, dict(batch, ecg=occluded)))[0].item()
    np.testing.assert_allclose(a.values[0, lead, start:start + win], drop, rtol=1e-4, atol=1e-7)


def test_saliency_is_the_absolute_input_gradient(model, batch):
    a = explain(model, batch, "ecg", "saliency", "stenosis_rca")
    f = ModalityForward(PatientContext(model, batch, 2), "ecg", resolve_target(model, "stenosis_rca"))
    x = batch["ecg"][2:3].clone().requires_grad_(True)
    grad, = torch.autograd.grad(f(x).sum(), x)
    np.testing.assert_allclose(a.values[2], grad.abs()[0].numpy(), rtol=1e-5, atol=1e-9)


def test_gradient_shap_is_reproducible_and_roughly_complete(model, batch):
    a1 = explain(model, batch, "ecg", "gradient_shap", "mace_30d", n_samples=40, seed=3)
    a2 = explain(model, batch, "ecg", "gradient_shap", "mace_30d", n_samples=40, seed=3)
    np.testing.assert_array_equal(a1.values, a2.values)
    expected = (_output(model, batch) - _output(model, dict(batch, ecg=torch.zeros_like(batch["ecg"])))).numpy()
    # expected gradients: completeness holds in expectation only; the sign and scale must agree
    sums = a1.values.reshape(3, -1).sum(1)
    assert np.all(np.abs(sums - expected) <= 0.5 * np.abs(expected) + 5e-3)


def test_ct_occlusion_cube_drop(model, batch):
    a = explain(model, batch, "ct", "occlusion", "mace_30d", window=8, stride=8)
    x = batch["ct"].clone()
    x[0, :, 8:16, 16:24, 0:8] = 0.0
    drop = (_output(model, batch) - _output(model, dict(batch, ct=x)))[0].item()
    np.testing.assert_allclose(a.values[0, :, 8:16, 16:24, 0:8], drop, rtol=1e-4, atol=1e-7)
    assert a.voxel_map(0).shape == (16, 32, 32)


def test_ct_gradcam_is_upsampled_trilinearly(model, batch):
    a = explain(model, batch, "ct", "gradcam", "stenosis_lad")
    coarse = torch.as_tensor(a.meta["patients"][0]["coarse"])[None, None]
    up = F.interpolate(coarse, size=(16, 32, 32), mode="trilinear")[0, 0].numpy()
    np.testing.assert_allclose(a.voxel_map(0), up, rtol=1e-5, atol=1e-8)
    assert a.values.min() >= 0  # ReLU of the weighted map
    assert a.peak(0) == tuple(np.unravel_index(np.argmax(up), up.shape))


def test_tabular_feature_ablation_sets_each_variable_to_missing(model, batch):
    a = explain(model, batch, "clinical", None, "mace_30d")
    assert a.method == "feature_ablation"
    assert a.feature_names == ["age", "sbp", "sex"]
    tab = batch["clinical_tabular"].clone()
    tab[1, 4:7] = torch.tensor([0.0, 0.0, 1.0])  # sex -> the "unknown" level
    drop = (_output(model, batch) - _output(model, dict(batch, clinical_tabular=tab)))[1].item()
    assert a.values[1, 2] == pytest.approx(drop, rel=1e-4, abs=1e-7)
    tab = batch["clinical_tabular"].clone()
    tab[0, 0:2] = torch.tensor([0.0, 1.0])  # age -> not recorded (z = 0, missing flag set)
    drop = (_output(model, batch) - _output(model, dict(batch, clinical_tabular=tab)))[0].item()
    assert a.values[0, 0] == pytest.approx(drop, rel=1e-4, abs=1e-7)


def test_modality_shapley_matches_exact_enumeration(model):
    b = make_batch(4, seed=5, ct_missing=(2,))
    tgt = resolve_target(model, "mace_30d")
    exact = explain(model, b, "modalities", "shapley", "mace_30d")
    sampled = explain(model, b, "modalities", "shapley_sampling", "mace_30d", n_samples=200)
    f = PresenceForward(model, b, tgt)
    avail = f.available()
    for i in range(4):
        def value(mask, i=i):
            m = torch.as_tensor(mask, dtype=torch.float32)[None] * avail[i:i + 1]
            rows = avail.clone()
            rows[i] = m[0]
            return f(rows)[i].item()
        ref = exact_shapley(value, 3)
        np.testing.assert_allclose(exact.values[i], ref, atol=1e-5)
        np.testing.assert_allclose(sampled.values[i], ref, atol=0.15 * np.abs(ref).max() + 1e-4)
    # efficiency: the values add up to f(all) - f(none) for sampled orders too
    np.testing.assert_allclose(sampled.values.sum(1), sampled.meta["f_all"] - sampled.meta["f_none"], atol=1e-5)
    assert exact.values[2, 1] == 0.0  # patient without CT: CT contributes nothing
    captum_exact = ShapleyValues(f).attribute(avail, baselines=0.0,
                                              feature_mask=torch.arange(3).repeat(4, 1)).numpy()
    np.testing.assert_allclose(exact.values, captum_exact, atol=1e-6)
    cm = exact.cohort_mean()
    assert list(cm["modality"]) == ["ecg", "ct", "clinical"] and list(cm["n"]) == [4, 3, 4]


def test_variable_spans_from_the_record_and_from_the_text():
    record = {"age": 63.4, "systolic_bp": 128, "diabetes": 0, "troponin": 0.014, "ldl": None}
    text = serialise_clinical(record)
    spans = variable_spans(text, record)
    parts = {name: text[s:e] for name, s, e in spans}
    assert parts == {"age": "Age: 63 years.", "systolic_bp": "Systolic blood pressure: 128 mmHg.",
                     "diabetes": "Diabetes mellitus: no.", "ldl": "LDL cholesterol: unknown.",
                     "troponin": "Troponin: 0.014."}
    parsed = {name: text[s:e] for name, s, e in variable_spans(text)}
    assert parsed == {"age": "Age: 63 years.", "sbp": "Systolic blood pressure: 128 mmHg.",
                      "diabetes": "Diabetes mellitus: no.", "ldl": "LDL cholesterol: unknown.",
                      "Troponin": "Troponin: 0.014."}


def test_text_layer_ig_rolls_tokens_up_to_variables_and_is_complete(text_encoder):
    torch.manual_seed(0)
    fusion = ConcatFusion({"clinical": text_encoder.feature_dim}, proj_dim=8)
    m = RiskModel({"clinical": text_encoder}, fusion, [BinaryHead(fusion.out_dim)]).eval()
    records = [{"age": 71, "sex": "male", "diabetes": 1}, {"age": 45, "sex": "female", "hdl": 62}]
    batch = {"patient_id": ["a", "b"], "clinical_text": [serialise_clinical(r) for r in records],
             "clinical_present": torch.tensor([True, True])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = explain(m, batch, "clinical", "ig", "mace_30d", records=records, n_steps=24)
    assert a.method == "layer_integrated_gradients"
    assert a.feature_names == ["age", "sex", "diabetes", "hdl", PROMPT_ROW, SPECIAL_ROW]
    assert np.isnan(a.values[0, 3]) and np.isnan(a.values[1, 2])
    for i in range(2):
        p = a.meta["patients"][i]
        # token attributions summed per variable (plus prompt and special rows) give the total
        assert np.nansum(a.values[i]) == pytest.approx(p["token_attributions"].sum(), abs=1e-6)
        assert abs(p["delta"]) < 0.1 * abs(p["token_attributions"].sum()) + 1e-4
        assert a.values[i, -1] == 0.0  # special tokens are kept in the baseline
        groups = dict(zip(p["tokens"], p["token_groups"]))
        assert groups["diabetes"] == "diabetes" if i == 0 else groups["62"] == "hdl"
        assert groups["[CLS]"] == SPECIAL_ROW and groups["following"] == PROMPT_ROW
    frame = a.to_frame()
    assert set(frame["variable"]) >= {"age", "sex"}
