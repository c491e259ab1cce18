"""The density figures (issue 9) for the two baselines: a Jupyter kernel (ipykernel, driven
with jupyter_client's KernelManager and BlockingKernelClient, as a notebook server drives it) and
plain python3 (Debian's /usr/bin/python3). Used by density_bench.py.
"""
import importlib.metadata
import importlib.util
import os
import statistics
import subprocess
import sys
import time

from session_bench import proc_table, pss_kib, until_quiet
from execute_roundtrip import PLOT_CODE, PLOT_ONLY_CODE, pct
from density_mcpx import STACK, mib

PYTHON = "/usr/bin/python3"
# ipykernel 6.17's debugger (imported by the kernel, and here by the kernelspec lookup) prints a
# frozen-modules warning without this; the kernels inherit it.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def jupyter_missing():
    """None when jupyter_client and ipykernel import here, else what to print instead."""
    for mod in ("jupyter_client", "ipykernel"):
        if importlib.util.find_spec(mod) is None:
            return "not installed"
    return None


def quiet(pids, quiet_s=1.0, timeout=120.0):
    """Waits until none of `pids` has used CPU for `quiet_s`."""
    def snapshot():
        t = proc_table()
        return tuple(t[p][3] for p in pids if p in t)

    if until_quiet(snapshot, quiet_s, timeout):
        return
    raise RuntimeError("processes %s did not go idle within %.0f s" % (pids, timeout))


class Kernel:
    """One ipykernel: started, a client on its channels, cells run to completion."""

    def __init__(self):
        from jupyter_client import KernelManager
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=dict(os.environ), stderr=subprocess.DEVNULL)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.pid = self.km.provisioner.pid

    def reply(self, code, timeout=120.0):
        """Runs `code`; returns once its execute_reply is in (the shell channel's answer, what
        a client waits for; iopub messages are drained after)."""
        msg_id = self.kc.execute(code)
        while True:
            r = self.kc.get_shell_msg(timeout=timeout)
            if r["parent_header"].get("msg_id") == msg_id:
                break
        if r["content"]["status"] != "ok":
            raise RuntimeError("Jupyter cell failed: %s" % r["content"])
        return msg_id

    def outputs(self, msg_id, timeout=120.0):
        """The iopub messages of a cell up to its idle status: (stdout text, display_data
        contents)."""
        stdout, displays = "", []
        while True:
            m = self.kc.get_iopub_msg(timeout=timeout)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            kind = m["msg_type"]
            if kind == "stream" and m["content"]["name"] == "stdout":
                stdout += m["content"]["text"]
            elif kind in ("display_data", "execute_result"):
                displays.append(m["content"])
            elif kind == "status" and m["content"]["execution_state"] == "idle":
                return stdout, displays

    def run(self, code):
        """Runs `code` to its idle status; returns (ms, stdout, display contents)."""
        t0 = time.perf_counter()
        msg_id = self.reply(code)
        stdout, displays = self.outputs(msg_id)
        return (time.perf_counter() - t0) * 1000.0, stdout, displays

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def jupyter_roundtrips(k, calls, plots):
    for _ in range(20):
        k.outputs(k.reply("x = 1"))
    rtt = []
    for _ in range(calls):
        t0 = time.perf_counter()
        msg_id = k.reply("x = 1")
        rtt.append((time.perf_counter() - t0) * 1000.0)
        k.outputs(msg_id)
    out = {"x1_p50_ms": pct(rtt, 50), "x1_p99_ms": pct(rtt, 99)}
    k.run("%matplotlib inline")
    for _ in range(3):
        k.run(PLOT_CODE)
    prtt, savefig = [], []
    for _ in range(plots):
        _, stdout, _ = k.run(PLOT_CODE)
        savefig.append(float(stdout.strip()))
        ms, _, displays = k.run(PLOT_ONLY_CODE)
        if sum("image/png" in d.get("data", {}) for d in displays) != 1:
            raise RuntimeError("Jupyter plot: expected one PNG, got %r" % displays)
        prtt.append(ms)
    out.update(plot_rtt_ms=pct(prtt, 50), plot_savefig_ms=pct(savefig, 50))
    out["plot_ratio"] = out["plot_rtt_ms"] / out["plot_savefig_ms"]
    return out


def measure_jupyter(calls, plots, new, idle):
    """`new` kernels started back to back, each until its first cell (the data stack) has
    replied; more up to `idle` kernels and their PSS once idle; round trips on the first."""
    missing = jupyter_missing()
    if missing:
        return {"missing": missing}
    started = []
    try:
        times = []
        for i in range(idle):
            t0 = time.perf_counter()
            k = Kernel()
            started.append(k)
            k.run(STACK)
            if i < new:
                times.append((time.perf_counter() - t0) * 1000.0)
        out = {"new_ms": times, "new_p50_ms": statistics.median(times),
               "new_worst_ms": max(times)}
        pids = [k.pid for k in started]
        quiet(pids)
        pss = [pss_kib(p)[0] for p in pids]
        out["idle_pss_mib"] = mib(statistics.mean(pss))
        out["details"] = [
            "Jupyter (ipykernel %s, jupyter_client %s), %d kernels, data stack imported, idle: "
            "PSS %.1f MiB each (min %.1f, max %.1f; the kernel processes, no notebook server)"
            % (_version("ipykernel"), _version("jupyter_client"), idle, out["idle_pss_mib"],
               mib(min(pss)), mib(max(pss)))]
        out.update(jupyter_roundtrips(started[0], calls, plots))
        return out
    finally:
        for k in started:
            k.close()


def _version(dist):
    """Without importing it (ipykernel's debugger warns at import)."""
    return importlib.metadata.version(dist)


def measure_python(new, idle):
    """python3 -c importing the data stack, `new` times (start to exit); `idle` processes with
    the stack imported, waiting on stdin, and their PSS."""
    env = dict(os.environ, MPLBACKEND="Agg")
    cmd = [PYTHON, "-c", STACK]
    subprocess.run(cmd, check=True, env=env)  # the matplotlib font cache exists after this
    times = []
    for _ in range(new):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        times.append((time.perf_counter() - t0) * 1000.0)
    out = {"new_ms": times, "new_p50_ms": statistics.median(times), "new_worst_ms": max(times)}
    wait = STACK + "; import sys; print('ready', flush=True); sys.stdin.read()"
    procs = [subprocess.Popen([PYTHON, "-c", wait], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=env) for _ in range(idle)]
    try:
        for p in procs:
            p.stdout.readline()
        quiet([p.pid for p in procs])
        pss = [pss_kib(p.pid)[0] for p in procs]
        out["idle_pss_mib"] = mib(statistics.mean(pss))
        out["details"] = ["python3 %s, %d processes, data stack imported, idle: PSS %.1f MiB "
                          "each (min %.1f, max %.1f)" % (sys.version.split()[0], idle,
                                                         out["idle_pss_mib"], mib(min(pss)),
                                                         mib(max(pss)))]
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()
    return out
