"""Each installer failure, simulated from the text the platform gives, gets its own sentence.

Texts marked "captured" were printed by pip 26.3 on this Debian machine on 2026-12-07 (an unreachable
index, a dead proxy, a Python without a torch wheel); the others are the messages as reported in peer
plugins' trackers and by torch / Windows (no Windows or Mac here to produce them).
"""

from __future__ import annotations

import pytest

from rssgl_qgis.install.diagnostics import format_diagnostics, last_error, record_error
from rssgl_qgis.install.failures import VC_REDIST_URL, classify, in_use_failure, not_python_failure
from rssgl_qgis.install.machine import find_python, is_qgis_program
from rssgl_qgis.install.progress import pip_progress

CAPTURED_OFFLINE = """Looking in indexes: https://download.pytorch.org/whl/cpu
WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NameResolutionError("HTTPSConnection(host='download.pytorch.org', port=443): Failed to resolve 'download.pytorch.org' ([Errno -2] Name or service not known)")': /whl/cpu/torch/
ERROR: Could not find a version that satisfies the requirement torch>=2.2 (from versions: none)
ERROR: No matching distribution found for torch>=2.2"""
CAPTURED_DEAD_PROXY = """WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError("HTTPSConnection(host='127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] Connection refused")': /simple/torch/
ERROR: Could not find a version that satisfies the requirement torch>=2.2 (from versions: none)
ERROR: No matching distribution found for torch>=2.2"""
CAPTURED_NO_WHEEL = """ERROR: Could not find a version that satisfies the requirement torch<2.3,>=2.2 (from versions: none)
ERROR: No matching distribution found for torch<2.3,>=2.2"""

CASES = {
    "msvc_runtime": (
        'OSError: [WinError 1114] A dynamic link library (DLL) initialization routine failed. Error loading '
        '"C:\\Users\\me\\AppData\\Roaming\\QGIS\\QGIS3\\profiles\\default\\python\\rssgl_deps\\torch\\lib\\c10.dll" '
        "or one of its dependencies.", VC_REDIST_URL),
    "numpy_conflict": (
        "ERROR: Cannot install torch==2.15.0 because these package versions have conflicting dependencies.\n\n"
        "The conflict is caused by:\n    The user requested (constraint) numpy==1.26.4\n    "
        "somepackage 1.0 depends on numpy>=2.0\n", "never does that"),
    "permission": (
        "ERROR: Could not install packages due to an OSError: [WinError 5] Access is denied: "
        "'C:\\\\Program Files\\\\QGIS 3.44.0\\\\apps\\\\Python312\\\\Lib\\\\site-packages\\\\torch'", "RSSGL_DEPS_DIR"),
    "tls": (
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection "
        "broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: unable to get local issuer certificate (_ssl.c:1006)'))': /simple/torch/", "PIP_CERT"),
    "proxy": (
        "WARNING: Retrying (Retry(total=4, ...)) after connection broken by 'ProxyError('Cannot connect to proxy.', "
        "OSError('Tunnel connection failed: 407 Proxy Authentication Required'))': /simple/torch/",
        "Settings > Options > Network"),
    "rosetta": (
        "ImportError: dlopen(/Users/me/Library/Application Support/QGIS/QGIS3/profiles/default/python/rssgl_deps/"
        "torch/_C.cpython-312-darwin.so, 0x0002): tried: '...' (mach-o file, but is an incompatible architecture "
        "(have 'arm64', need 'x86_64'))", "Apple Silicon (arm64) build of QGIS"),
    "cuda_mismatch": (
        "UserWarning: NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current "
        "PyTorch installation.", "12.8 or newer"),
    "network": (CAPTURED_OFFLINE, "Install from a folder"),
    "pip_missing": ("/Applications/QGIS.app/Contents/MacOS/bin/python3.12: No module named pip", "ensurepip"),
    "disk_full": ("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device",
                  "disk is full"),
    "no_matching": (CAPTURED_NO_WHEEL, "no PyTorch for the Python 3.13"),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_cause_gets_its_own_sentence(code):
    text, words = CASES[code]
    failure = classify(text, python=(3, 13), target=r"C:\Program Files\QGIS 3.44.0\deps", interpreter="python3.12")
    assert failure is not None and failure.code == code
    assert words in failure.message.text()


def test_sentences_are_distinct_and_filled():
    sentences = {classify(text, (3, 12), "/deps", "py").message.text() for text, _ in CASES.values()}
    assert len(sentences) == len(CASES)
    assert all("{" not in s for s in sentences)


def test_other_cuda_messages_and_a_dead_proxy():
    assert classify("RuntimeError: The NVIDIA driver on your system is too old (found version 11040).").code == "cuda_mismatch"
    assert classify("CUDA error: no kernel image is available for execution on the device").code == "cuda_mismatch"
    assert classify(CAPTURED_DEAD_PROXY).code == "network"  # pip names no proxy when it refuses the connection
    assert "proxy" in classify(CAPTURED_DEAD_PROXY).message.text()


def test_unknown_text_is_not_classified():
    assert classify("ERROR: something nobody has seen before") is None
    assert classify("ERROR: No matching distribution found for filelock (from torch)") is None


def test_not_python_and_in_use_sentences():
    assert "qgis-bin.exe" in not_python_failure("qgis-bin.exe").message.text()
    assert "OSGeo4W Shell" in not_python_failure("qgis-bin.exe").message.text()
    assert "Restart QGIS" in in_use_failure("/deps").message.text()


def _layout(tmp_path, *files):
    for f in files:
        path = tmp_path / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return tmp_path


def test_find_python_on_osgeo4w_standalone_macos_and_linux_layouts(tmp_path):
    no_path = lambda name: None  # noqa: E731
    # OSGeo4W / standalone installer: qgis-bin.exe in bin/, Python in apps/Python312 (sys.exec_prefix)
    root = _layout(tmp_path / "osgeo4w", "bin/qgis-bin.exe", "apps/Python312/python.exe")
    found = find_python(str(root / "bin/qgis-bin.exe"), str(root / "apps/Python312"), (3, 12), which=no_path)
    assert found == str(root / "apps/Python312/python.exe")
    # a layout with python3.exe beside qgis-bin.exe only
    root = _layout(tmp_path / "beside", "bin/qgis-ltr-bin.exe", "bin/python3.exe")
    found = find_python(str(root / "bin/qgis-ltr-bin.exe"), str(root / "apps/Python312"), (3, 12), which=no_path)
    assert found == str(root / "bin/python3.exe")
    # macOS bundle: Contents/MacOS/QGIS and Contents/MacOS/bin/python3.12
    root = _layout(tmp_path / "QGIS.app", "Contents/MacOS/QGIS", "Contents/MacOS/bin/python3.12")
    found = find_python(str(root / "Contents/MacOS/QGIS"), str(root / "Contents/Frameworks"), (3, 12), which=no_path)
    assert found == str(root / "Contents/MacOS/bin/python3.12")
    # Linux: /usr/bin/qgis, exec_prefix /usr
    root = _layout(tmp_path / "usr", "bin/qgis", "bin/python3.11")
    assert find_python(str(root / "bin/qgis"), str(root), (3, 11), which=no_path) == str(root / "bin/python3.11")
    # nothing beside qgis-bin.exe and nothing on the PATH: None (the dialog then explains)
    root = _layout(tmp_path / "bare", "bin/qgis-bin.exe")
    assert find_python(str(root / "bin/qgis-bin.exe"), str(root / "apps"), (3, 12), which=no_path) is None
    # only a versioned name is taken from the PATH, never a bare "python3" of another version
    asked = []
    find_python(str(root / "bin/qgis-bin.exe"), str(root / "apps"), (3, 12), which=lambda n: asked.append(n))
    assert asked == ["python3.12"]
    assert is_qgis_program(r"C:\OSGeo4W\bin\qgis-bin.exe") and not is_qgis_program("/usr/bin/python3.11")


def test_progress_follows_pip_stages_and_never_goes_back():
    lines = ["Looking in indexes: https://download.pytorch.org/whl/cpu", "Collecting torch>=2.2",
             "  Downloading https://download.pytorch.org/whl/cpu/torch-2.15.0%2Bcpu-cp312-cp312-win_amd64.whl (220 MB)",
             "Collecting sympy", "  Downloading sympy-1.14.0-py3-none-any.whl (6.3 MB)",
             "Installing collected packages: mpmath, sympy, torch", "Successfully installed torch-2.15.0+cpu"]
    values, value = [], 0
    for line in lines:
        value = pip_progress(line, value)
        values.append(value)
    assert values == [5, 5, 20, 20, 20, 85, 100]


def test_diagnostics_text_lists_every_item_and_the_last_error():
    items = [("QGIS", "3.44.16-Solothurn"), ("Python", "3.12.7"), ("torch", "2.15.0+cpu")]
    text = format_diagnostics(items, "Training failed:\nout of memory")
    assert text.splitlines()[1] == "QGIS:   3.44.16-Solothurn"
    assert "    out of memory" in text and text.startswith("RSSGL diagnostics")
    assert "Last error: none" in format_diagnostics(items, None)
    record_error("pip failed")
    assert last_error() == "pip failed"
