"""Resident memory of a pytest process, per test (Linux /proc; opt-in).

`ADVJAX_RSS_LOG=PATH python -m pytest -q -n 2` appends one tab-separated line per test to
PATH.<worker> (`gw0`, `gw1`, or `main` without xdist):

  worker  nodeid  seconds  rss_mb  hwm_mb  tree_peak_mb

rss_mb is the worker's resident set after the test (VmRSS), hwm_mb its peak so far (VmHWM), and
tree_peak_mb the largest sum, sampled every 0.2 s during the test, of the worker's RSS and its
descendants' (notebook kernels, subprocesses). `python -m tests._memory PATH` summarizes the files.
"""

import glob
import os
import sys
import threading
import time

import pytest


def status_mb(pid="self"):
  """{'VmRSS': MB, 'VmHWM': MB} of a process (empty once it is gone)."""
  out = {}
  try:
    with open(f"/proc/{pid}/status") as f:
      for line in f:
        if line.startswith(("VmRSS:", "VmHWM:")):
          key, value = line.split(":")
          out[key] = int(value.split()[0]) / 1024
  except OSError:
    pass
  return out


def _children_map():
  children = {}
  for stat in glob.glob("/proc/[0-9]*/stat"):
    try:
      with open(stat) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
      continue
    children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
  return children


def tree_rss_mb(pid):
  """RSS of pid plus all of its descendants, MB."""
  children, total, todo = _children_map(), 0.0, [pid]
  while todo:
    p = todo.pop()
    total += status_mb(p).get("VmRSS", 0.0)
    todo.extend(children.get(p, ()))
  return total


class RssLog:
  """pytest plugin writing the per-test memory lines described in the module docstring."""

  def __init__(self, path, interval=0.2):
    self.worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    self.file = open(f"{path}.{self.worker}", "a", buffering=1)  # pylint: disable=consider-using-with
    self.interval = interval
    self.peak = 0.0
    self.start = time.time()
    self.stop = threading.Event()
    threading.Thread(target=self._sample, daemon=True).start()

  def _sample(self):
    pid = os.getpid()
    while not self.stop.wait(self.interval):
      self.peak = max(self.peak, tree_rss_mb(pid))

  def pytest_runtest_logfinish(self, nodeid, location):  # pylint: disable=unused-argument
    now, mem = time.time(), status_mb()
    peak = max(self.peak, tree_rss_mb(os.getpid()))
    self.file.write(
      f"{self.worker}\t{nodeid}\t{now - self.start:.1f}\t{mem.get('VmRSS', 0):.0f}\t"
      f"{mem.get('VmHWM', 0):.0f}\t{peak:.0f}\n"
    )
    self.peak, self.start = 0.0, now

  def pytest_unconfigure(self, config):  # pylint: disable=unused-argument
    self.stop.set()
    self.file.close()


class RssLimit:
  """pytest plugin: the test during which the process's peak RSS (VmHWM) first exceeds
  `limit_mb` fails, naming the peak, so that memory growth shows up in CI before laptops
  run out."""

  def __init__(self, limit_mb):
    self.limit_mb = limit_mb
    self.tripped = False

  @pytest.hookimpl(wrapper=True)
  def pytest_runtest_makereport(self, item, call):  # pylint: disable=unused-argument
    report = yield
    if self.tripped or call.when != "call" or report.failed:
      return report
    peak = status_mb().get("VmHWM", 0.0)
    if peak > self.limit_mb:
      self.tripped = True
      report.outcome = "failed"
      report.longrepr = (
        f"peak resident memory of this pytest process reached {peak:.0f} MB "
        f"during {item.nodeid}, over ADVJAX_TEST_RSS_LIMIT_MB={self.limit_mb}: "
        "something keeps memory across tests (see tests/_memory.py to find what)"
      )
    return report


def summarize(path):
  """Per worker: peak RSS, peak tree RSS, and the modules across which RSS grew the most."""
  for name in sorted(glob.glob(f"{path}.*")):
    rows = [line.rstrip("\n").split("\t") for line in open(name)]
    rows = [(r[1], float(r[2]), float(r[3]), float(r[4]), float(r[5])) for r in rows if len(r) == 6]
    if not rows:
      continue
    print(
      f"{os.path.basename(name)}: {len(rows)} tests, {sum(r[1] for r in rows) / 60:.1f} min, "
      f"peak RSS {max(r[3] for r in rows):.0f} MB, peak with children "
      f"{max(r[4] for r in rows):.0f} MB, final RSS {rows[-1][2]:.0f} MB"
    )
    modules, prev = {}, rows[0][2]  # the first test's own growth is not known
    for nodeid, secs, rss, _, tree in rows:
      m = modules.setdefault(nodeid.split("::")[0], [0.0, 0.0, 0, 0.0, 0.0])
      m[0] += rss - prev
      m[1] += secs
      m[2] += 1
      m[3] = max(m[3], rss)
      m[4] = max(m[4], tree)
      prev = rss
    print("  module                                   tests    min  RSS grew  max RSS  max tree")
    for mod, (grew, secs, n, top, tree) in sorted(modules.items(), key=lambda kv: -kv[1][0]):
      print(f"  {mod:40s} {n:5d} {secs / 60:6.1f} {grew:+9.0f} {top:8.0f} {tree:9.0f}")


if __name__ == "__main__":
  summarize(sys.argv[1])
