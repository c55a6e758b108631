"""Figures of docs/ct.md: synthetic plaques from the lesion-synthesis engine next to the real CTA.

Reads the real cardiac CTA fixture (../shared/fixtures/ct/cardiac_cta: CT + heart mask), finds
patch centres with the mask-less fallback (thin contrast-bright structures by the heart), and
draws engine patches with calcified and non-calcified plaques beside the untouched anatomy.

Run from the repository root: ``python docs/figures/ct/make_ct_figures.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parents[3] / "shared" / "fixtures" / "ct" / "cardiac_cta"


def _patch_with(engine, vol, cand, calcified: bool, start_seed: int):
    for seed in range(start_seed, start_seed + 200):
        p = engine(vol.array, vol.spacing, cand, np.random.default_rng(seed))
        if p.lesions and p.lesions[0]["calcified"] == calcified and p.mask[p.mask.shape[0] // 2].any():
            return p
    raise RuntimeError("no patch with the requested plaque found")


def main() -> None:
    from riskfm.ct import read_ct
    from riskfm.ct.synthesis import (
        LesionSynthesisEngine,
        SynthesisConfig,
        candidate_voxels,
        vessel_candidates,
    )
    from riskfm.plots.style import new_figure, publication_style, save_figure

    vol = read_ct(FIXTURE / "ct.nii.gz")
    heart = read_ct(FIXTURE / "heart.nii.gz").array > 0.5
    mask, source = vessel_candidates(vol.array, vol.spacing, heart)
    cand = candidate_voxels(mask, margin=12)

    # Plaques and noise only (no rotation) so the patch lines up with the untouched anatomy beside it.
    base = dict(patch_size=(40, 40, 40), lesion_prob=1.0, max_lesions=1, max_rotation_deg=0.0,
                zoom_range=(1.0, 1.0), flip_prob=0.0)
    engine = LesionSynthesisEngine(SynthesisConfig(**base))
    clean = LesionSynthesisEngine(SynthesisConfig(**{**base, "lesion_prob": 0.0, "noise": False}))
    rows = [("calcified", _patch_with(engine, vol, cand, True, 0)),
            ("non-calcified", _patch_with(engine, vol, cand, False, 1000))]

    with publication_style():
        fig = new_figure(7.2, 5.0)
        z = int(np.argmax(mask.sum(axis=(1, 2))))
        ax = fig.add_subplot(2, 4, 1)
        ax.imshow(np.clip(vol.array[z], -200, 800), cmap="gray")
        ax.contour(heart[z], levels=[0.5], colors="#2ca02c", linewidths=0.6)
        ys, xs = np.nonzero(mask[z])
        ax.scatter(xs, ys, s=1, c="#d62728")
        ax.set_title("real CTA: heart (green),\npatch centres (red)")
        ax.axis("off")
        for r, (name, p) in enumerate(rows):
            mid = p.hu.shape[0] // 2
            zoom = (slice(8, 32), slice(8, 32))  # the central 24 x 24 voxels (36 mm) around the centre
            untouched = clean(vol.array, vol.spacing, np.array([np.ravel_multi_index(p.centre, vol.shape)]),
                              np.random.default_rng(0)).hu
            panels = [(untouched[mid][zoom], "real patch (centre)"),
                      (p.hu[mid][zoom], f"+ synthetic {name}\nplaque and noise")]
            for c, (img, title) in enumerate(panels):
                ax = fig.add_subplot(2, 4, 4 * r + 2 + c)
                ax.imshow(img, cmap="gray", vmin=-250, vmax=1600)
                if c == 1:
                    ax.contour(p.mask[mid][zoom], levels=[0.5], colors="#ff7f0e", linewidths=0.6)
                ax.set_title(title)
                ax.axis("off")
            ax = fig.add_subplot(2, 4, 4 * r + 4)
            win = p.image[:, mid][(slice(None), *zoom)]
            ax.imshow(np.concatenate([np.concatenate(list(win[:2]), 1), np.concatenate(list(win[2:]), 1)], 0),
                      cmap="gray", vmin=0, vmax=1)
            ax.set_title("input windows: fat | soft\nangiographic | calcium")
            ax.axis("off")
        ax = fig.add_subplot(2, 4, 5)
        for name, p in rows:
            ax.hist(p.hu[p.mask > 0], bins=30, alpha=0.6, label=name)
        ax.set_xlabel("HU inside the lesion mask")
        ax.legend()
        path = save_figure(fig, HERE / "synthetic_lesions_real_cta.png")
    print(f"fallback rule: {source}; {len(cand)} candidate centres; wrote {path}")


if __name__ == "__main__":
    main()
