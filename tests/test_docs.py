"""README code blocks and the examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    """Every python block runs, in order, in one process: later blocks continue the first."""
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 3, "README lost its python blocks"
    script = tmp_path / "readme.py"
    script.write_text("\n\n".join(f"# --- README block {i}\n{b}" for i, b in enumerate(blocks)))
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, f"README blocks failed:\n{proc.stderr}"
    assert "resumed" in proc.stdout


def test_quickstart_is_the_readme_block() -> None:
    assert (ROOT / "examples" / "quickstart.py").read_text() in python_blocks(
        (ROOT / "README.md").read_text()
    )


def test_quickstart_prints_the_approved_result(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "waiting: transfer_funds" in proc.stdout and "Done: sent 9000 to bob" in proc.stdout
