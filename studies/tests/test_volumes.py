"""The volume benchmark's bookkeeping: the oracle cut to the expert extent and its report line."""

from __future__ import annotations

import numpy as np

from studies import volumes as bench


def test_beyond_extent_cuts_each_structure_to_the_slices_the_expert_labelled():
    truth = np.zeros((5, 8, 8), np.uint8)
    truth[1:4, 2:5, 2:5] = 1  # RV on slices 1..3
    truth[0:5, 5:7, 5:7] = 3  # LV on every slice
    pred = truth.copy()
    pred[0, 2:5, 2:5] = 1  # RV found on the first slice too (9 px)
    pred[4, 2:4, 2:4] = 1  # and on the last (4 px)
    cut, counts = bench.beyond_extent(pred, truth)
    assert counts[1] == (2, 13, 2)
    assert counts[3] == (0, 0, 0) and counts[2] == (0, 0, 0)
    assert np.array_equal(cut, truth)  # only the RV outside its extent is removed
    assert (pred[0, 2:5, 2:5] == 1).all()  # the input is not changed


def test_report_states_what_cutting_to_the_extent_would_give():
    def row(rv):
        return {c: (0.9 if c != 1 else rv, 2.0) for c in bench.CLASSES}

    rows = {name: row(0.8) for name in ("propagation, 1 slice", "propagation, 2 slices", "copy seed (1 slice)",
                                         "oracle GT box every slice", "coarse (corrupted)", "refine slice-by-slice",
                                         "refine 3-D")}
    rows[bench.CUT] = row(0.9)
    result = {"name": "v", "slices": 5, "rows": rows, "seconds": {"propagate, 1 slice": 1.0},
              "split": {"decode": 1.0, "mining": 0.1}, "split3": {"mine": 0.1, "decode": 1.0, "paste": 0.1},
              "stopped": 0, "beyond": {1: (2, 13, 2), 2: (0, 0, 0), 3: (1, 5, 0)}}
    text = bench.report([result, result], 60, 60.0)
    assert "RV 4 slices, 26 px (4 of them the volume's first or last slice), Dice 80.0 -> 90.0 if cut" in text
    assert "LV 2 slices, 10 px (0 of them" in text
    assert f"| {bench.CUT} | 90.0 | 90.0 | 90.0 |" in text
