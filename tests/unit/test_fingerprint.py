"""The device fingerprint says what the machine is, not whose it is."""

from __future__ import annotations

import platform

from edgeproof.device.fingerprint import HOSTNAME_ENV, device_fingerprint


def test_hostname_is_left_out_unless_asked_for(monkeypatch):
    monkeypatch.delenv(HOSTNAME_ENV, raising=False)
    info = device_fingerprint(["CPUExecutionProvider"])
    assert "hostname" not in info and info["providers_used"] == ["CPUExecutionProvider"]
    assert platform.node() not in repr({k: v for k, v in info.items() if k != "os"})
    monkeypatch.setenv(HOSTNAME_ENV, "1")
    assert device_fingerprint()["hostname"] == platform.node()
