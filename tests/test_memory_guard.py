"""The memory guard's arithmetic, on fake /proc and cgroup files and mocked resource limits.

Nothing here allocates: every limit is read from files written under ``tmp_path``.
"""

import resource

import pytest

import sklearn_ntk._validation as val

GiB = 2**30


@pytest.fixture
def fake_system(tmp_path, monkeypatch):
    """Point the guard at an empty fake /proc and no cgroup mounts; no RLIMIT_AS."""
    proc = tmp_path / "proc"
    proc.mkdir()
    monkeypatch.setattr(val, "_MEMINFO", str(proc / "meminfo"))
    monkeypatch.setattr(val, "_SELF_STATUS", str(proc / "status"))
    monkeypatch.setattr(val, "_SELF_CGROUP", str(proc / "cgroup"))
    monkeypatch.setattr(val, "_SELF_MOUNTINFO", str(proc / "mountinfo"))
    (proc / "mountinfo").write_text("")
    (proc / "cgroup").write_text("")
    monkeypatch.setattr(
        resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    )
    return tmp_path


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def meminfo(root, avail_kib):
    write(root / "proc" / "meminfo",
          f"MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:   {avail_kib} kB\n")


def mount(root, lines):
    write(root / "proc" / "mountinfo", "".join(lines))


def v2_mount(root):
    return f"41 31 0:38 / {root / 'cg2'} rw,relatime - cgroup2 cgroup2 rw\n"


def v1_mount(root, cgroup_root="/"):
    return f"35 31 0:32 {cgroup_root} {root / 'cg1'} rw,relatime - cgroup cgroup rw,memory\n"


def test_meminfo_alone(fake_system):
    meminfo(fake_system, 1_000_000)
    assert val.available_memory_bytes() == 1_000_000 * 1024
    assert val.memory_limits() == {
        "MemAvailable": 1_024_000_000, "cgroup limit": None, "RLIMIT_AS": None,
    }


def test_cgroup_v2_tightest_enclosing_limit_minus_working_set(fake_system):
    root = fake_system
    meminfo(root, 64 * 2**20)  # 64 GiB free on the host
    mount(root, [v2_mount(root)])
    write(root / "proc" / "cgroup", "0::/pod/job\n")
    job, pod = root / "cg2" / "pod" / "job", root / "cg2" / "pod"
    # the job's own limit is loose; the enclosing pod's is the one that binds
    write(job / "memory.max", f"{10 * GiB}\n")
    write(job / "memory.current", f"{1 * GiB}\n")
    write(job / "memory.stat", "anon 1\nfile 5\ninactive_file 0\n")
    write(pod / "memory.max", f"{6 * GiB}\n")
    write(pod / "memory.current", f"{4 * GiB}\n")
    write(pod / "memory.stat", f"anon 7\ninactive_file {1 * GiB}\nactive_file 9\n")
    write(root / "cg2" / "memory.max", "max\n")  # the root: unlimited
    write(root / "cg2" / "memory.current", f"{50 * GiB}\n")
    # pod: 6 - (4 - 1 reclaimable cache) = 3 GiB; job: 10 - 1 = 9 GiB
    assert val.memory_limits()["cgroup limit"] == 3 * GiB
    assert val.available_memory_bytes() == 3 * GiB


def test_cgroup_v1_with_unlimited_sentinel_and_foreign_namespace_path(fake_system):
    root = fake_system
    meminfo(root, 64 * 2**20)
    mount(root, [v1_mount(root), v2_mount(root)])
    # the v1 path names a cgroup of another namespace that is not visible: use the mount's
    write(root / "proc" / "cgroup", "4:memory:/docker/abc\n0::/\n")
    write(root / "cg1" / "memory.limit_in_bytes", f"{2 * GiB}\n")
    write(root / "cg1" / "memory.usage_in_bytes", f"{GiB // 2}\n")
    write(root / "cg1" / "memory.stat", f"cache 3\ninactive_file 5\ntotal_inactive_file {GiB // 4}\n")
    write(root / "cg2" / "memory.max", "max\n")
    assert val.memory_limits()["cgroup limit"] == 2 * GiB - GiB // 4
    write(root / "cg1" / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit"
    assert val.memory_limits()["cgroup limit"] is None
    assert val.available_memory_bytes() == 64 * GiB


def test_cgroup_v1_mount_of_a_subtree(fake_system):
    root = fake_system
    meminfo(root, 64 * 2**20)
    mount(root, [v1_mount(root, "/docker/abc")])
    write(root / "proc" / "cgroup", "7:cpu,memory:/docker/abc/inner\n")
    write(root / "cg1" / "inner" / "memory.limit_in_bytes", f"{3 * GiB}\n")
    write(root / "cg1" / "inner" / "memory.usage_in_bytes", f"{1 * GiB}\n")
    write(root / "cg1" / "memory.limit_in_bytes", f"{5 * GiB}\n")
    write(root / "cg1" / "memory.usage_in_bytes", f"{4 * GiB}\n")
    assert val.memory_limits()["cgroup limit"] == 1 * GiB  # the mount's own level binds


def test_usage_above_limit_leaves_nothing(fake_system):
    root = fake_system
    meminfo(root, 64 * 2**20)
    mount(root, [v2_mount(root)])
    write(root / "proc" / "cgroup", "0::/\n")
    write(root / "cg2" / "memory.max", f"{1 * GiB}\n")
    write(root / "cg2" / "memory.current", f"{2 * GiB}\n")
    assert val.available_memory_bytes() == 0


def test_rlimit_as_minus_current_address_space(fake_system, monkeypatch):
    root = fake_system
    meminfo(root, 64 * 2**20)
    write(root / "proc" / "status", f"Name:\tpython\nVmPeak:\t 99 kB\nVmSize:\t {3 * 2**20} kB\n")
    monkeypatch.setattr(resource, "getrlimit", lambda which: (
        (4 * GiB, resource.RLIM_INFINITY) if which == resource.RLIMIT_AS
        else (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    ))
    assert val.memory_limits()["RLIMIT_AS"] == 1 * GiB
    assert val.available_memory_bytes() == 1 * GiB


def test_check_memory_message_states_sizes_and_limits(fake_system):
    root = fake_system
    meminfo(root, 8 * 2**20)
    mount(root, [v2_mount(root)])
    write(root / "proc" / "cgroup", "0::/\n")
    write(root / "cg2" / "memory.max", f"{4 * GiB}\n")
    write(root / "cg2" / "memory.current", "0\n")
    val.check_memory(4 * GiB, "fits exactly")  # no error
    with pytest.raises(MemoryError) as info:
        val.check_memory(6 * GiB, "NTKKernel on 10 x 10 inputs")
    msg = str(info.value)
    assert msg.startswith("NTKKernel on 10 x 10 inputs needs 6.00 GiB but only 4.00 GiB")
    assert "MemAvailable 8.00 GiB; cgroup limit 4.00 GiB" in msg
    assert "smaller blocks of rows" in msg
    with pytest.raises(MemoryError, match=r"needs 2.00 GiB but only 1.00 GiB is available; "
                                          r"use a GPU"):
        val.check_memory(2 * GiB, "x", available=GiB, hint="use a GPU")
    with pytest.raises(MemoryError, match=r"needs 9.31e-07 GiB \(1,000 bytes\)"):
        val.check_memory(1000, "tiny", available=10)


def test_unknown_limits_never_refuse(fake_system, monkeypatch):
    monkeypatch.setattr(val.os, "sysconf", lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert val.available_memory_bytes() is None
    val.check_memory(10**30, "anything")  # nothing known: no refusal
