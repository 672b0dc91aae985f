"""report.json (versioned schema) and report.md, written atomically."""
import json
import os
from typing import Any, Dict

SCHEMA_VERSION = 1


def atomic_write_text(path: str, text: str) -> None:
  """Writes `text` to `path` via a temporary file and a rename (never half-written)."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)


def _to_jsonable(x):
  if isinstance(x, dict):
    return {str(k): _to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_to_jsonable(v) for v in x]
  if hasattr(x, "item") and getattr(x, "size", 2) == 1:
    return x.item()
  return x


def write_report(workdir: str, report: Dict[str, Any]) -> None:
  """Writes workdir/report.json and workdir/report.md."""
  report = dict(_to_jsonable(report), schema_version=SCHEMA_VERSION)
  atomic_write_text(os.path.join(workdir, "report.json"),
                    json.dumps(report, indent=2, sort_keys=True))
  atomic_write_text(os.path.join(workdir, "report.md"), render_markdown(report))


def render_markdown(r: Dict[str, Any]) -> str:
  """A readable report: setup, the accuracy table, training cost, figures."""
  lines = [f"# advjax report: {r.get('name', '')}", ""]
  setup = r.get("setup", {})
  if setup:
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in setup.items()]
    lines.append("")
  n = r.get("num_test_examples")
  lines += [f"## Accuracy on {n} held-out test images", "",
            "| evaluation | eps (Linf) | accuracy | robustness gap | mean confidence |",
            "|---|---|---|---|---|",
            f"| clean | - | {r['clean_accuracy']:.4f} | - | {r['clean_confidence']:.4f} |"]
  for name, a in r.get("attacks", {}).items():
    lines.append(f"| {a.get('label', name)} | {a['eps']:g} | {a['accuracy']:.4f} | "
                 f"{r['clean_accuracy'] - a['accuracy']:.4f} | {a['confidence']:.4f} |")
  lines.append("")
  t = r.get("train")
  if t:
    lines += ["## Training", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
              for k, v in t.items()]
    lines.append("")
  figs = r.get("figures", [])
  if figs:
    lines += ["## Figures", ""] + [f"![{os.path.basename(f)}]({f})" for f in figs] + [""]
  return "\n".join(lines)
