"""Translations: the .ts files compile, are complete for the GUI, keep placeholders, and load in Qt."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("qgis.core")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
I18N = os.path.join(REPO_ROOT, "i18n")
LANGUAGES = ("de", "zh")
# Contexts whose every string must be translated: the desktop GUI and the algorithms' names/labels.
REQUIRED_CONTEXTS = {
    "RssglDockWidget", "RssglDesktop", "TorchInstallerDialog", "TorchInstaller", "TorchStatus",
    "TrainingLayer", "RssglResults", "RssglTrainTask", "RssglProvider", "TrainRssglAlgorithm", "ClassifyRssglAlgorithm",
    "AssessAccuracyAlgorithm", "RssglHelp",
}
LRELEASE = shutil.which("lrelease")
# Product names and formats that rightly stay as they are (German keeps "CUDA: ..., GiB").
SAME_IN_EVERY_LANGUAGE = {"PyTorch {0} | {1}", "CUDA: {0}, {1:.0f} GiB", "GeoPackage (*.gpkg)"}


def messages(lang: str):
    root = ET.parse(os.path.join(I18N, f"rssgl_qgis_{lang}.ts")).getroot()
    for context in root.iter("context"):
        name = context.findtext("name")
        for message in context.iter("message"):
            translation = message.find("translation")
            yield name, message.findtext("source"), translation


def compile_qm(lang: str, out_dir: str) -> tuple[str, str]:
    """lrelease one .ts; returns (qm path, lrelease's report)."""
    qm = os.path.join(out_dir, f"rssgl_qgis_{lang}.qm")
    result = subprocess.run(
        [LRELEASE, os.path.join(I18N, f"rssgl_qgis_{lang}.ts"), "-qm", qm], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return qm, result.stdout + result.stderr


@pytest.mark.skipif(LRELEASE is None, reason="lrelease (qttools5-dev-tools) is not installed")
@pytest.mark.parametrize("lang", LANGUAGES)
def test_ts_compiles_with_lrelease(lang, tmp_path):
    qm, report = compile_qm(lang, str(tmp_path))
    assert os.path.getsize(qm) > 1000
    generated = re.search(r"Generated (\d+) translation", report)
    assert generated and int(generated.group(1)) >= 150, report


@pytest.mark.parametrize("lang", LANGUAGES)
def test_gui_and_algorithm_strings_are_translated(lang):
    seen_contexts, untranslated = set(), []
    for context, source, translation in messages(lang):
        seen_contexts.add(context)
        done = translation is not None and translation.text and translation.get("type") != "unfinished"
        if context in REQUIRED_CONTEXTS and not done:
            untranslated.append(f"[{context}] {source}")
    assert {"RssglDockWidget", "TrainRssglAlgorithm"} <= seen_contexts
    assert not untranslated, "untranslated:\n" + "\n".join(untranslated)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_placeholders_and_markup(lang):
    """A translation that drops or renames {0} would crash str.format() in that language only."""
    for context, source, translation in messages(lang):
        if translation is None or not translation.text:
            continue
        text = translation.text
        assert sorted(re.findall(r"\{[^}]*\}", text)) == sorted(re.findall(r"\{[^}]*\}", source)), (context, source)
        assert text.count("<b>") == source.count("<b>"), (context, source)
        assert text != source or len(source) < 12 or source in SAME_IN_EVERY_LANGUAGE, (
            f"[{context}] copied, not translated: {source}"
        )


@pytest.mark.skipif(LRELEASE is None, reason="lrelease (qttools5-dev-tools) is not installed")
def test_german_and_chinese_load_through_the_plugin_loader(qgis_app):
    from qgis.PyQt.QtCore import QCoreApplication

    from rssgl_qgis.i18n_loader import install_translator

    for lang in LANGUAGES:  # the loader reads i18n/*.qm (gitignored, built by `make transcompile`)
        compile_qm(lang, I18N)
    translator = install_translator("de")
    assert translator is not None
    try:
        assert QCoreApplication.translate("RssglDockWidget", "Train and classify") == "Trainieren und klassifizieren"
        assert QCoreApplication.translate("TrainRssglAlgorithm", "Train RSSGL") == "RSSGL trainieren"
        from rssgl_qgis.gui.status import TorchStatus

        line = TorchStatus("2.13.0", "", False, "too_old").line()
        assert line.startswith("PyTorch 2.13.0 ist zu alt")
    finally:
        QCoreApplication.removeTranslator(translator)
    zh = install_translator("zh")
    try:
        assert QCoreApplication.translate("RssglDockWidget", "Train and classify") == "训练并分类"
    finally:
        QCoreApplication.removeTranslator(zh)
    assert QCoreApplication.translate("RssglDockWidget", "Train and classify") == "Train and classify"


@pytest.mark.skipif(LRELEASE is None, reason="lrelease (qttools5-dev-tools) is not installed")
def test_dock_shows_german_labels(qgis_app):
    from qgis.PyQt.QtCore import QCoreApplication

    from rssgl_qgis.gui.dock import RssglDockWidget
    from rssgl_qgis.i18n_loader import install_translator

    compile_qm("de", I18N)
    translator = install_translator("de")
    try:
        dock = RssglDockWidget(None)
        assert dock.train_button.text() == "Trainieren und klassifizieren"
        assert dock.windowTitle() == "RSSGL-Klassifikation"
        dock.status_probe.wait(120)
        dock.deleteLater()
    finally:
        QCoreApplication.removeTranslator(translator)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_help_text_reaches_the_translators(lang):
    """pylupdate5 silently skips a translate() call it cannot parse (the algorithm descriptions were once
    missed because their context stood on a line of its own): every help text must be in the .ts file."""
    from rssgl_qgis.processing import help as help_texts

    sources = {source for context, source, _ in messages(lang) if context == "RssglHelp"}
    texts = list(help_texts.descriptions().values())
    texts += [t for per_algorithm in help_texts.parameter_help().values() for t in per_algorithm.values()]
    missing = [t[:70] for t in texts if t not in sources]
    assert not missing, "help texts not extracted (run make transup):\n" + "\n".join(missing)
