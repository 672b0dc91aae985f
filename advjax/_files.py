"""Atomic file writes: the one implementation every writer of a result file uses.

Written by hand: the standard library has `os.replace` (atomic on POSIX within one
folder) but no write-to-a-temporary-then-rename helper.
"""

import os
import uuid
from typing import Callable, IO


def atomic_write(path, write: Callable[[IO[bytes]], None]) -> str:
  """Calls `write(f)` on a new temporary file beside `path`, then renames it over `path`.

  A reader never sees a half-written file, and a failure (in `write` or the rename)
  leaves the earlier file, or none, and no temporary file.

  Args:
    path: the destination; its folder must exist.
    write: writes the content to the binary file object it is given.

  Returns:
    `path`, as a string.
  """
  path = os.fspath(path)
  folder, base = os.path.split(os.path.abspath(path))
  tmp = os.path.join(folder, f".{base}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
  try:
    with open(tmp, "xb") as f:
      write(f)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def atomic_write_text(path, text: str) -> str:
  """Writes `text` (UTF-8) to `path` with `atomic_write`: never half-written.

  Returns:
    `path`, as a string.
  """
  return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
