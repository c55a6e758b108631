import numpy as np
import pytest

from riskfm.ecg.beats import BeatDetectionError, detect_r_peaks, median_beat
from riskfm.synthetic.ecg_render import EcgSiteProfile, render_ecg


def _record(severity=(0.0, 0.0, 0.0, 0.0), hr=72.0, seed=0, noise=0.02):
    rng = np.random.default_rng(seed)
    return render_ecg(rng, np.asarray(severity, float), heart_rate_bpm=hr, age=60, female=False,
                      profile=EcgSiteProfile(noise_mv=noise, wander_mv=0.0))


@pytest.mark.parametrize("hr", [50.0, 72.0, 110.0])
def test_r_peaks_match_heart_rate(hr):
    x = _record(hr=hr)
    peaks = detect_r_peaks(x, 500.0)
    rate = 60.0 / np.median(np.diff(peaks) / 500.0)
    assert rate == pytest.approx(hr, rel=0.1)
    assert len(peaks) == pytest.approx(10 * hr / 60, abs=2)


def test_median_beat_shape_noise_and_st_level():
    healthy = median_beat(_record(seed=1), 500.0)
    assert healthy.shape == (12, int(0.25 * 500) + int(0.45 * 500))
    # noise averages out: a noisy record's median beat is close to the clean one's
    clean = median_beat(_record(seed=2, noise=0.0), 500.0)
    noisy = median_beat(_record(seed=2, noise=0.05), 500.0)
    assert np.sqrt(np.mean((clean - noisy) ** 2)) < 0.03
    # LAD disease: ST depression in V2 (row 7) of the median beat, at R + 100 ms vs PR at R - 80 ms
    sick = median_beat(_record(severity=(0, 0, 1.0, 0), seed=2, noise=0.0), 500.0)
    r = int(0.25 * 500)

    def st(beat):
        return beat[7, r + 50] - beat[7, r - 40]

    assert st(sick) < st(clean) - 0.1


def test_flat_record_is_refused():
    with pytest.raises(BeatDetectionError, match="complete beats"):
        median_beat(np.zeros((12, 5000), np.float32), 500.0)
