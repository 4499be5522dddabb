"""The Runtime object: one place for the device manager, the process state, counters and memos."""
from __future__ import annotations

import json

from neuron_core import runtime
from neuron_core.runtime import context, profile
from neuron_core.runtime.context import Runtime, use
from neuron_core.runtime.device import get_device_manager, reset_device_manager
from neuron_core.runtime.state import process_state
from tests.core.neff_fixtures import neff  # noqa: F401  (a fixture)

GiB = 1024**3


def test_fixture_installs_a_fresh_runtime_and_the_aliases_reach_it(fresh_runtime):
    assert context.default() is fresh_runtime
    assert get_device_manager() is fresh_runtime.devices
    assert process_state() is fresh_runtime.process
    reset_device_manager()
    assert get_device_manager() is fresh_runtime.devices


def test_use_restores_the_previous_default(fresh_runtime):
    inner = Runtime()
    with use(inner):
        assert context.default() is inner
    assert context.default() is fresh_runtime


def test_runtimes_keep_separate_books(fresh_runtime, monkeypatch):
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1")
    other = Runtime()
    held = fresh_runtime.devices.allocate(GiB, owner="a")
    assert other.devices.visible_cores == (1,) and fresh_runtime.devices.visible_cores == (1,)
    assert other.devices.usage()[1].used == 0
    assert fresh_runtime.devices.usage()[1].used == GiB
    fresh_runtime.devices.free(held)


def test_fresh_shares_memos_but_not_state(fresh_runtime):
    fresh_runtime.memo("test.fact")["x"] = 1
    fresh_runtime.last_plans["test"] = "plan"
    assert fresh_runtime.next_profile("d", "m") == 0 and fresh_runtime.next_profile("d", "m") == 1
    with use(fresh_runtime):
        child = Runtime.fresh()
    assert child.memo("test.fact") == {"x": 1}
    assert child.last_plans == {} and child.next_profile("d", "m") == 0
    assert Runtime().memo("test.fact") == {}


def test_process_state_reports_its_runtimes_devices(fresh_runtime, neff):  # noqa: F811
    with runtime.load(neff) as model:
        snapshot = fresh_runtime.process.snapshot()
        assert [m["name"] for m in snapshot["models"]] == [model.name]
        used = snapshot["cores"][str(model.core)]["memory_used"]
        assert used == fresh_runtime.devices.usage()[model.core].used > 0
        published = fresh_runtime.host / f"{snapshot['pid']}.json"
        assert json.loads(published.read_text())["models"][0]["name"] == model.name
    assert not published.exists()


def test_profiles_are_numbered_per_runtime(fresh_runtime, tmp_path):
    first = profile.write_profile(tmp_path, {"traceEvents": []}, "m")
    second = profile.write_profile(tmp_path, {"traceEvents": []}, "m")
    assert first.name.endswith("-00000.trace.json") and second.name.endswith("-00001.trace.json")
    assert fresh_runtime.profile_counts == {(str(tmp_path), "m"): 2}
