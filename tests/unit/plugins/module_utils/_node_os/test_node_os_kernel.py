"""Kernel settings: refusals, what a container node cannot take, the files (pure, on a fake /proc/sys)."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import kernel


@pytest.fixture
def procsys(tmp_path):
    values = {
        "kernel/kptr_restrict": "0",
        "kernel/yama/ptrace_scope": "0",
        "net/ipv4/ip_forward": "1",
        "net/ipv4/conf/all/send_redirects": "1",
        "net/core/bpf_jit_harden": "0",
    }
    for path, value in values.items():
        (tmp_path / "sys" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sys" / path).write_text(value + "\n")
    return tmp_path / "sys"


def params(tmp_path, sysctls, **over):
    p = {
        "sysctls": sysctls,
        "modules_blacklist": [],
        "modules_in_use": [],
        "header": "test",
        "sysctl_file": str(tmp_path / "sysctl.conf"),
        "modprobe_file": str(tmp_path / "modprobe.conf"),
        "core_dumps_restricted": False,
        "root": str(tmp_path / "root"),
    }
    p.update(over)
    return p


WANTED = {
    "kernel.kptr_restrict": 2,
    "kernel.yama.ptrace_scope": 1,
    "net.ipv4.ip_forward": 1,
    "net.ipv4.conf.all.send_redirects": 0,
    "net.core.bpf_jit_harden": 2,
}


def test_a_sysctl_the_kernel_does_not_have_is_refused_with_nothing_written(tmp_path, procsys):
    with pytest.raises(KubeguardError) as err:
        kernel.run(params(tmp_path, {**WANTED, "kernel.no_such_knob": 1}), False, str(procsys), container=False)
    assert err.value.option == "sysctls"
    assert "kernel.no_such_knob" in err.value.message
    assert (procsys / "kernel/kptr_restrict").read_text() == "0\n"
    assert not (tmp_path / "sysctl.conf").exists()


@pytest.mark.parametrize(
    ("name", "value", "option"),
    [
        ("net.ipv4.ip_forward", 0, "sysctls"),
        ("vm.overcommit_memory", "0", "sysctls"),
        ("kernel.panic", 0, "sysctls_optional"),
    ],
)
def test_a_value_kubernetes_cannot_run_with_is_refused_naming_its_option(tmp_path, procsys, name, value, option):
    wanted = params(tmp_path, {} if option == "sysctls_optional" else {name: value})
    wanted["sysctls_optional"] = {name: value} if option == "sysctls_optional" else {}
    with pytest.raises(KubeguardError) as err:
        kernel.run(wanted, False, str(procsys), container=False)
    assert err.value.option == option
    assert name in err.value.message
    assert "it must be" in err.value.message
    assert not (tmp_path / "sysctl.conf").exists()


def test_the_values_kubernetes_needs_pass(tmp_path, procsys):
    kernel.run(params(tmp_path, {"net.ipv4.ip_forward": "1"}), True, str(procsys), container=False)


@pytest.mark.parametrize("bad", [{"Kernel..x": 1}, {"kernel.kptr_restrict": "1\n2"}, {"kernel.kptr_restrict": " "}])
def test_malformed_names_and_values_are_refused(tmp_path, procsys, bad):
    with pytest.raises(KubeguardError):
        kernel.run(params(tmp_path, bad), False, str(procsys), container=False)


def test_a_host_takes_every_setting_and_a_rerun_changes_nothing(tmp_path, procsys):
    result = kernel.run(params(tmp_path, WANTED), False, str(procsys), container=False)
    assert result["changed"]
    assert result["applied"] == {"kernel.kptr_restrict": "2", "kernel.yama.ptrace_scope": "1",
                                 "net.ipv4.conf.all.send_redirects": "0", "net.core.bpf_jit_harden": "2"}  # fmt: skip
    assert (procsys / "kernel/kptr_restrict").read_text() == "2"
    assert "net.ipv4.ip_forward = 1" in (tmp_path / "sysctl.conf").read_text()
    again = kernel.run(params(tmp_path, WANTED), False, str(procsys), container=False)
    assert not again["changed"] and again["applied"] == {}


def test_a_container_node_leaves_the_hosts_global_settings_alone(tmp_path, procsys):
    result = kernel.run(params(tmp_path, WANTED), False, str(procsys), container=True)
    skipped = {e["name"]: e["reason"] for e in result["not_applicable"]}
    assert set(skipped) == {"kernel.kptr_restrict", "kernel.yama.ptrace_scope", "net.core.bpf_jit_harden"}
    assert all("sharing its host's kernel" in reason for reason in skipped.values())
    assert (procsys / "kernel/kptr_restrict").read_text() == "0\n"  # the host's value, untouched
    assert result["applied"] == {"net.ipv4.conf.all.send_redirects": "0"}
    text = (tmp_path / "sysctl.conf").read_text()
    assert "\nkernel.kptr_restrict" not in text  # systemd-sysctl would write it into the host at boot
    assert "# not applicable: kernel.kptr_restrict = 2" in text


def test_bridge_settings_without_br_netfilter_are_not_applicable(tmp_path, procsys):
    result = kernel.run(params(tmp_path, {"net.bridge.bridge-nf-call-iptables": 1}), True, str(procsys), False)
    assert result["not_applicable"][0]["reason"] == "br_netfilter is not loaded on this node"


def test_modules_in_use_or_loaded_stay_and_the_rest_is_blacklisted(tmp_path, procsys, monkeypatch):
    monkeypatch.setattr(kernel, "loaded_modules", lambda: {"squashfs"})
    p = params(tmp_path, {}, modules_blacklist=["cramfs", "sctp", "squashfs", "usb-storage"], modules_in_use=["sctp"])
    result = kernel.run(p, False, str(procsys), container=False)
    assert result["modules"]["blacklisted"] == ["cramfs", "usb-storage"]
    assert [k["name"] for k in result["modules"]["kept"]] == ["sctp", "squashfs"]
    text = (tmp_path / "modprobe.conf").read_text()
    assert "install cramfs /bin/false\nblacklist cramfs\n" in text and "sctp" not in text


def test_a_bad_module_name_is_refused(tmp_path, procsys):
    with pytest.raises(KubeguardError) as err:
        kernel.run(params(tmp_path, {}, modules_blacklist=["cramfs; rm -rf /"]), True, str(procsys), False)
    assert err.value.option == "modules_blacklist"


@pytest.mark.parametrize("module", ["br_netfilter", "overlay", "nf-conntrack", "ip_vs_rr"])
def test_a_module_kubernetes_loads_is_never_blacklisted(tmp_path, procsys, module):
    with pytest.raises(KubeguardError) as err:
        kernel.run(params(tmp_path, {}, modules_blacklist=["cramfs", module]), False, str(procsys), False)
    assert err.value.option == "modules_blacklist"
    assert err.value.message.startswith(f"{module}: ")
    assert not (tmp_path / "modprobe.conf").exists()


def test_core_dumps_are_restricted_in_three_places(tmp_path, procsys):
    p = params(tmp_path, {}, core_dumps_restricted=True)
    assert kernel.run(p, False, str(procsys), container=True)["changed"]
    root = tmp_path / "root"
    assert (
        "Storage=none\nProcessSizeMax=0" in (root / "etc/systemd/coredump.conf.d/60-kubeguard-node-os.conf").read_text()
    )
    assert "* hard core 0" in (root / "etc/security/limits.d/60-kubeguard-node-os.conf").read_text()
    assert "ulimit -c 0" in (root / "etc/profile.d/60-kubeguard-node-os.sh").read_text()
    assert not kernel.run(p, False, str(procsys), container=True)["changed"]


def test_a_table_entry_this_kernel_lacks_is_not_applicable_but_yours_is_refused(tmp_path, procsys):
    table = {"kernel.sysrq": 0, "kernel.kptr_restrict": 2}
    result = kernel.run(params(tmp_path, {}, sysctls_optional=table), True, str(procsys), container=False)
    assert result["not_applicable"][0] == {
        "name": "kernel.sysrq", "value": "0", "current": None, "reason": "this kernel was built without it"
    }  # fmt: skip
    with pytest.raises(KubeguardError):
        kernel.run(params(tmp_path, {"kernel.sysrq": 0}, sysctls_optional=table), True, str(procsys), False)
