"""Feeder data model, validation, built-in cases and the pandapower importer (spec S4)."""
import dataclasses

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from p2penv.network import FEEDERS, Feeder, from_pandapower, get_feeder, ieee33, teaching4


def test_teaching4_topology_by_hand():
    f = teaching4()
    assert f.n_line == 3 and f.root == 0
    np.testing.assert_array_equal(f.parent, [-1, 0, 1, 1])
    assert f.children == ((1,), (2, 3), (), ())
    # path[l, k]: line 0 (0->1) feeds buses 1,2,3; line 1 feeds bus 2; line 2 feeds bus 3.
    np.testing.assert_array_equal(f.path, [[0, 1, 1, 1], [0, 0, 1, 0], [0, 0, 0, 1]])
    # Shared path resistance: R_22 = 0.01 + 0.02, R_23 = 0.01 (common line 0->1 only).
    np.testing.assert_allclose(f.r_path[2], [0, 0.01, 0.03, 0.01])
    np.testing.assert_allclose(f.x_path[3], [0, 0.02, 0.02, 0.03])
    np.testing.assert_array_equal(f.downstream(0), [1, 2, 3])
    # 11 kV, 1000 kVA: z_base = 121 ohm.
    assert f.z_base_ohm == pytest.approx(121.0)


def test_lines_are_reoriented_away_from_root():
    f = Feeder(3, [1, 2], [0, 1], [0.1, 0.2], [0.1, 0.1], 11.0, 1000.0, root=0)
    np.testing.assert_array_equal(f.from_bus, [0, 1])
    np.testing.assert_array_equal(f.to_bus, [1, 2])
    g = Feeder(3, [0, 1], [1, 2], [0.1, 0.2], [0.1, 0.1], 11.0, 1000.0, root=2)
    np.testing.assert_array_equal(g.parent, [1, 2, -1])


def test_arrays_are_read_only():
    f = teaching4()
    with pytest.raises(ValueError):
        f.r_pu[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.n_bus = 5


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        (dict(from_bus=[0, 1, 1], to_bus=[1, 2, 2]), "closes a loop"),
        (dict(from_bus=[0, 1], to_bus=[1, 2], r_pu=[0.1, 0.1], x_pu=[0.1, 0.1]), "needs 3 lines"),
        (dict(from_bus=[0, 2, 2], to_bus=[1, 3, 3]), "bus 2 is not connected to root 0"),
        (dict(from_bus=[0, 1, 1], to_bus=[1, 2, 2]), r"line 2 \(1->2\) closes a loop"),
        (dict(r_pu=[0.1, 0.0, 0.1]), r"line 1 \(1->2\) has r <= 0"),
        (dict(x_pu=[0.1, 0.1, -0.1]), r"line 2 \(1->3\) has x < 0"),
        (dict(root=4), "root 4"),
        (dict(v_min=1.0, v_max=1.0), "bus 0 needs 0 <= v_min < v_max"),
        (dict(line_limit_kva=[100.0, 0.0, 100.0]), r"line 1 \(1->2\) has line_limit_kva <= 0"),
        (dict(to_bus=[1, 2, 4]), "invalid bus index"),
    ],
)
def test_validation_names_the_field(kwargs, msg):
    base = dict(n_bus=4, from_bus=[0, 1, 1], to_bus=[1, 2, 3], r_pu=[0.1, 0.1, 0.1], x_pu=[0.1, 0.1, 0.1],
                base_kv=11.0, base_kva=1000.0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=msg):
        Feeder(**base)


def test_disconnected_feeder_rejected():
    # 4 buses, 3 lines but bus 3 unreachable because lines 0-1, 1-2, 2-0 form a loop.
    with pytest.raises(ValueError, match="closes a loop|not connected"):
        Feeder(4, [0, 1, 2], [1, 2, 0], [0.1] * 3, [0.1] * 3, 11.0, 1000.0)


def test_ieee33_matches_pandapower_case33bw():
    f = ieee33()
    net = pn.case33bw()
    lines = net.line[net.line.in_service]
    np.testing.assert_array_equal(f.from_bus, lines.from_bus)
    np.testing.assert_array_equal(f.to_bus, lines.to_bus)
    np.testing.assert_allclose(f.r_ohm(), lines.r_ohm_per_km * lines.length_km, rtol=1e-12)
    np.testing.assert_allclose(f.x_ohm(), lines.x_ohm_per_km * lines.length_km, rtol=1e-12)
    p = np.zeros(33)
    q = np.zeros(33)
    p[net.load.bus] = net.load.p_mw * 1000
    q[net.load.bus] = net.load.q_mvar * 1000
    np.testing.assert_allclose(f.p_load_kw, p, atol=1e-9)
    np.testing.assert_allclose(f.q_load_kvar, q, atol=1e-9)
    # Baran & Wu 1989: total load 3715 kW / 2300 kvar at 12.66 kV.
    assert f.p_load_kw.sum() == pytest.approx(3715.0)
    assert f.q_load_kvar.sum() == pytest.approx(2300.0)
    assert f.base_kv == 12.66


def test_from_pandapower_reproduces_ieee33():
    f, g = ieee33(), from_pandapower(pn.case33bw())
    np.testing.assert_allclose(g.r_pu, f.r_pu, rtol=1e-12)
    np.testing.assert_allclose(g.x_pu, f.x_pu, rtol=1e-12)
    np.testing.assert_allclose(g.p_load_kw, f.p_load_kw, atol=1e-9)
    np.testing.assert_allclose(g.q_load_kvar, f.q_load_kvar, atol=1e-9)
    assert g.root == 0 and np.all(np.isinf(g.line_limit_kva))  # 99999 kA placeholder = unlimited
    np.testing.assert_allclose(g.v_min[1:], 0.9)


def test_from_pandapower_rejects_meshes_and_unsupported_elements():
    net = pn.case33bw()
    net.line.loc[32, "in_service"] = True  # close tie line 20-7
    with pytest.raises(ValueError, match="feeder: .*(lines|loop)"):
        from_pandapower(net)
    net = pn.case33bw()
    pp.create_switch(net, 1, 0, et="l")
    with pytest.raises(ValueError, match="table 'switch'"):
        from_pandapower(net)
    net = pn.case33bw()
    lv = pp.create_bus(net, 0.4)
    pp.create_transformer(net, 5, lv, "0.4 MVA 20/0.4 kV")
    with pytest.raises(ValueError, match="table 'trafo'"):
        from_pandapower(net)


def test_registry():
    assert set(FEEDERS) == {"ieee33", "teaching4", "ieee69", "ieee_eu_lv", "cigre_lv", "kerber_dorfnetz"}
    assert get_feeder("ieee33").n_bus == 33 and get_feeder("teaching4").n_bus == 4
    with pytest.raises(ValueError, match="unknown name 'x'"):
        get_feeder("x")
