"""An old-style client: SBLIM wbemcli, as scripts written for libvirt-cim use it."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.wbemcli,
              pytest.mark.skipif(shutil.which("wbemcli") is None, reason="wbemcli not installed"),
              pytest.mark.usefixtures("node_server")]


def wbemcli(*args) -> str:
    out = subprocess.run(["wbemcli", "-noverify", *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_wbemcli_enumerate_and_associate(node_server, lv):
    base = f"http://127.0.0.1:{node_server.port}/root/virt"
    names = wbemcli("ein", f"{base}:KVM_ComputerSystem")
    got = [m.group(1) for m in re.finditer(r'[.,]Name="([^"]*)"', names)]
    assert sorted(got) == sorted(d.name() for d in lv.listAllDomains())
    inst = wbemcli("gi", f'{base}:KVM_ComputerSystem.CreationClassName="KVM_ComputerSystem",'
                         f'Name="paused"')
    assert "EnabledState=9" in inst
    devs = wbemcli("ain", "-ac", "KVM_SystemDevice",
                   f'{base}:KVM_ComputerSystem.CreationClassName="KVM_ComputerSystem",'
                   f'Name="paused"')
    assert 'DeviceID="paused/hda"' in devs and "KVM_Processor" in devs
    rasd = wbemcli("gi", f'{base}:KVM_DiskResourceAllocationSettingData.InstanceID="paused/hda"')
    assert 'Address="/srv/paused.img"' in rasd
