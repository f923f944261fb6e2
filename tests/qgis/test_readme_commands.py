"""The README's "Running qgis_process by hand" commands work as pasted (issue 16): run them verbatim."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_block(heading: str) -> str:
    text = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index(heading):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(not os.path.exists("/usr/bin/qgis_process.bin"), reason="Debian's qgis_process is not installed")
def test_the_readme_commands_answer_help_for_train(tmp_path):
    commands = readme_block("## Running qgis_process by hand")
    assert "make install-dev" in commands and "help rssgl:train" in commands
    # No Python version in the paths: the same commands run on Debian 12 (3.11) and in the 3.44/3.40 roots (3.13).
    assert not re.search(r"python3\.\d", commands), commands
    env = {k: v for k, v in os.environ.items() if not k.startswith("QGIS_")}
    env["HOME"] = str(tmp_path)  # a fresh user: the profile link lands in this throw-away home
    done = subprocess.run(["bash", "-ec", commands], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "not found" not in out and "Train RSSGL" in out, out[-3000:]
    assert "VALIDATION_SHARE" in out and "CROSS_VALIDATION" in out
    link = tmp_path / ".local/share/QGIS/QGIS3/profiles/default/python/plugins/rssgl_qgis"
    assert link.is_symlink() and (link / "metadata.txt").exists()
