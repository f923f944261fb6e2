<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de_DE">
<context>
    <name>AssessAccuracyAlgorithm</name>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="38"/>
        <source>Assess accuracy</source>
        <translation>Genauigkeit bewerten</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="75"/>
        <source>Classification</source>
        <translation>Klassifikation</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="43"/>
        <source>Reference samples (polygons or points)</source>
        <translation>Referenzstichproben (Polygone oder Punkte)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="46"/>
        <source>Reference class field</source>
        <translation>Klassenfeld der Referenz</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="77"/>
        <source>Reference as a label raster</source>
        <translation>Referenz als Label-Raster</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="51"/>
        <source>Accuracy report (HTML)</source>
        <translation>Genauigkeitsbericht (HTML)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="51"/>
        <source>HTML files (*.html)</source>
        <translation>HTML-Dateien (*.html)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="53"/>
        <source>Accuracy table (CSV)</source>
        <translation>Genauigkeitstabelle (CSV)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="53"/>
        <source>CSV files (*.csv)</source>
        <translation>CSV-Dateien (*.csv)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="56"/>
        <source>Overall accuracy</source>
        <translation>Gesamtgenauigkeit</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="57"/>
        <source>Kappa</source>
        <translation>Kappa</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="64"/>
        <source>Give the reference either as a vector layer (&apos;Reference samples&apos;) or as a label raster (&apos;Reference as a label raster&apos;), not both or neither.</source>
        <translation>Geben Sie die Referenz entweder als Vektorlayer ('Referenzstichproben') oder als Label-Raster ('Referenz als Label-Raster') an, nicht beides und nicht keines von beiden.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="67"/>
        <source>Choose the &apos;Reference class field&apos; of the reference samples.</source>
        <translation>Wählen Sie das 'Klassenfeld der Referenz' der Referenzstichproben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="85"/>
        <source>The reference layer has no field &apos;{}&apos;.</source>
        <translation>Der Referenzlayer hat kein Feld '{}'.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="88"/>
        <source>&apos;{}&apos; is a text field: reference classes are matched to the classification&apos;s class names.</source>
        <translation>'{}' ist ein Textfeld: Die Referenzklassen werden über die Klassennamen der Klassifikation zugeordnet.</translation>
    </message>
</context>
<context>
    <name>ClassificationPostProcessor</name>
    <message>
        <location filename="../rssgl_qgis/processing/style.py" line="104"/>
        <source>No class names were found in {}; the layer keeps its default style.</source>
        <translation>In {} wurden keine Klassennamen gefunden; der Layer behält seinen Standardstil.</translation>
    </message>
</context>
<context>
    <name>ClassifyRssglAlgorithm</name>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py"/>
        <source>The model file holds the spectral model only (stage one, RSSGL not trained): each pixel is classified on its own.</source>
        <translation>Die Modelldatei enthält nur das Spektralmodell (Stufe eins, RSSGL nicht trainiert): jedes Pixel wird für sich klassifiziert.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="40"/>
        <source>Classify with RSSGL</source>
        <translation>Mit RSSGL klassifizieren</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="91"/>
        <source>Hyperspectral raster</source>
        <translation>Hyperspektrales Raster</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="45"/>
        <source>RSSGL model file</source>
        <translation>RSSGL-Modelldatei</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="47"/>
        <source>Mask (polygons or raster)</source>
        <translation>Maske (Polygone oder Raster)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="52"/>
        <source>Classification</source>
        <translation>Klassifikation</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="53"/>
        <source>Confidence</source>
        <translation>Konfidenz</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="55"/>
        <source>Class probabilities</source>
        <translation>Klassenwahrscheinlichkeiten</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="65"/>
        <source>The model file &apos;{}&apos; does not exist; choose a .rssgl file written by &apos;Train RSSGL&apos;.</source>
        <translation>Die Modelldatei '{}' existiert nicht; wählen Sie eine von 'RSSGL trainieren' geschriebene .rssgl-Datei.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="87"/>
        <source>The RSSGL engine could not be loaded ({}). Install PyTorch for the Python that QGIS uses (the RSSGL dock offers to do it).</source>
        <translation>Die RSSGL-Engine konnte nicht geladen werden ({}). Installieren Sie PyTorch für das Python, das QGIS verwendet (das RSSGL-Dock bietet dies an).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="108"/>
        <source>The mask &apos;{}&apos; is neither a raster nor a vector layer.</source>
        <translation>Die Maske '{}' ist weder ein Raster- noch ein Vektorlayer.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="112"/>
        <source>Mask: pixels whose centre lies inside &apos;{}&apos;.</source>
        <translation>Maske: Pixel, deren Mittelpunkt innerhalb von '{}' liegt.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="117"/>
        <source>Loading the model</source>
        <translation>Modell wird geladen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="119"/>
        <source>Model: {} bands, classes {}; running on {}.</source>
        <translation>Modell: {} Kanäle, Klassen {}; läuft auf {}.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="131"/>
        <source>RSSGL classification</source>
        <translation>RSSGL-Klassifikation</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="132"/>
        <source>RSSGL confidence</source>
        <translation>RSSGL-Konfidenz</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="49"/>
        <source>Whole-scene statistics across tiles (seamless; slower on large rasters)</source>
        <translation>Statistik der ganzen Szene über alle Kacheln (nahtlos; langsamer bei großen Rastern)</translation>
    </message>
</context>
<context>
    <name>RssglAlgorithm</name>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="96"/>
        <source>Hyperspectral classification</source>
        <translation>Hyperspektrale Klassifikation</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="148"/>
        <source>The parameter &apos;{}&apos; needs a raster layer.</source>
        <translation>Der Parameter '{}' benötigt einen Rasterlayer.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="155"/>
        <source>&apos;{}&apos; is a &apos;{}&apos; layer; RSSGL reads rasters through GDAL files. Save the layer as a GeoTIFF (Export &gt; Save As) and use that file.</source>
        <translation>'{}' ist ein '{}'-Layer; RSSGL liest Raster als GDAL-Dateien. Speichern Sie den Layer als GeoTIFF (Exportieren &gt; Speichern als) und verwenden Sie diese Datei.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="176"/>
        <source>Could not read the vector layer given for &apos;{}&apos;.</source>
        <translation>Der für '{}' angegebene Vektorlayer konnte nicht gelesen werden.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="198"/>
        <source>Canceled: no output was written.</source>
        <translation>Abgebrochen: Es wurde keine Ausgabe geschrieben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="203"/>
        <source>Not enough memory: {}. Close other programs, or use a smaller raster or fewer optional outputs.</source>
        <translation>Nicht genug Speicher: {}. Schließen Sie andere Programme oder verwenden Sie ein kleineres Raster bzw. weniger optionale Ausgaben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="206"/>
        <source>Not enough memory to finish. Close other programs, or use a smaller raster or fewer optional outputs.</source>
        <translation>Nicht genug Arbeitsspeicher, um fertig zu werden. Schließen Sie andere Programme oder verwenden Sie ein kleineres Raster oder weniger optionale Ausgaben.</translation>
    </message>
</context>
<context>
    <name>RssglDesktop</name>
    <message>
        <location filename="../rssgl_qgis/gui/desktop.py" line="40"/>
        <source>RSSGL classification</source>
        <translation>RSSGL-Klassifikation</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/desktop.py" line="43"/>
        <source>Train a deep hyperspectral classifier on polygons you draw</source>
        <translation>Einen tiefen hyperspektralen Klassifikator mit selbst gezeichneten Polygonen trainieren</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/desktop.py" line="65"/>
        <source>&amp;RSSGL</source>
        <translation>&amp;RSSGL</translation>
    </message>
</context>
<context>
    <name>RssglDockWidget</name>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="546"/>
        <source>RSSGL classification</source>
        <translation>RSSGL-Klassifikation</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="54"/>
        <source>Checking PyTorch...</source>
        <translation>PyTorch wird geprüft ...</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="56"/>
        <source>Install PyTorch...</source>
        <translation>PyTorch installieren ...</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="63"/>
        <source>Image</source>
        <translation>Bild</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="67"/>
        <source>Raster</source>
        <translation>Raster</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="93"/>
        <source>Layer</source>
        <translation>Layer</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="94"/>
        <source>Class field</source>
        <translation>Klassenfeld</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="96"/>
        <source>New training layer...</source>
        <translation>Neuer Trainingslayer ...</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="97"/>
        <source>Create a GeoPackage polygon layer with class_id and class_name fields in the raster&apos;s CRS.</source>
        <translation>Einen GeoPackage-Polygonlayer mit den Feldern class_id und class_name im KBS des Rasters anlegen.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="109"/>
        <source>Add class</source>
        <translation>Klasse hinzufügen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="110"/>
        <source>Rename</source>
        <translation>Umbenennen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="112"/>
        <source>Colour of the active class</source>
        <translation>Farbe der aktiven Klasse</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="124"/>
        <source>Toggle editing</source>
        <translation>Bearbeitung umschalten</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="125"/>
        <source>Draw polygon</source>
        <translation>Polygon zeichnen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="133"/>
        <source>Training</source>
        <translation>Training</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="138"/>
        <source>The paper trains 600 iterations; fewer is faster but less accurate.</source>
        <translation>Im Artikel werden 600 Iterationen trainiert; weniger ist schneller, aber ungenauer.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="140"/>
        <source>Automatic (GPU if available)</source>
        <translation>Automatisch (GPU, falls vorhanden)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="140"/>
        <source>CUDA GPU</source>
        <translation>CUDA-GPU</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="140"/>
        <source>CPU</source>
        <translation>CPU</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="154"/>
        <source>Each run writes its model, maps and report into a new sub-folder here.</source>
        <translation>Jeder Lauf schreibt Modell, Karten und Bericht in einen neuen Unterordner hier.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="155"/>
        <source>Continue from previous model (fine-tune)</source>
        <translation>Vom vorherigen Modell weitertrainieren (Feinabstimmung)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="156"/>
        <source>Keep previous results</source>
        <translation>Vorherige Ergebnisse behalten</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="157"/>
        <source>Iterations</source>
        <translation>Iterationen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="158"/>
        <source>Device</source>
        <translation>Gerät</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="160"/>
        <source>Output folder</source>
        <translation>Ausgabeordner</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="164"/>
        <source>Train and classify</source>
        <translation>Trainieren und klassifizieren</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="166"/>
        <source>Cancel</source>
        <translation>Abbrechen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="178"/>
        <source>Results</source>
        <translation>Ergebnisse</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="180"/>
        <source>No run yet.</source>
        <translation>Noch kein Lauf.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="105"/>
        <source>PyTorch is not available.</source>
        <translation>PyTorch ist nicht verfügbar.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="186"/>
        <source>Add a class, then draw polygons: they get the active class.</source>
        <translation>Fügen Sie eine Klasse hinzu und zeichnen Sie dann Polygone: Sie erhalten die aktive Klasse.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="188"/>
        <source>New polygons get class: {0}</source>
        <translation>Neue Polygone erhalten die Klasse: {0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="207"/>
        <source>Choose or create a training layer first.</source>
        <translation>Wählen oder erstellen Sie zuerst einen Trainingslayer.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="215"/>
        <source>The class &apos;{0}&apos; exists already.</source>
        <translation>Die Klasse '{0}' existiert bereits.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="254"/>
        <source>Class name:</source>
        <translation>Klassenname:</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="251"/>
        <source>Classes of a text field are named by their value; edit the polygons instead.</source>
        <translation>Klassen eines Textfelds heißen wie ihr Wert; bearbeiten Sie stattdessen die Polygone.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="254"/>
        <source>Rename class</source>
        <translation>Klasse umbenennen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="296"/>
        <source>Open or choose the raster first: the training layer uses its CRS.</source>
        <translation>Öffnen oder wählen Sie zuerst das Raster: Der Trainingslayer verwendet dessen KBS.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="282"/>
        <source>New training layer</source>
        <translation>Neuer Trainingslayer</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="282"/>
        <source>GeoPackage (*.gpkg)</source>
        <translation>GeoPackage (*.gpkg)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="299"/>
        <source>Save the project first, or choose where to write the training layer.</source>
        <translation>Speichern Sie zuerst das Projekt oder wählen Sie, wohin der Trainingslayer geschrieben werden soll.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="300"/>
        <source>{0} training polygons</source>
        <translation>{0} Trainingspolygone</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="357"/>
        <source>Stop editing</source>
        <translation>Bearbeitung beenden</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="357"/>
        <source>Start editing</source>
        <translation>Bearbeitung beginnen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="369"/>
        <source>Choose a raster layer that is a file (GeoTIFF, ENVI, ...) in &apos;Raster&apos;.</source>
        <translation>Wählen Sie unter 'Raster' einen Rasterlayer, der eine Datei ist (GeoTIFF, ENVI, ...).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="379"/>
        <source>Choose a training layer, or create one with &apos;New training layer...&apos;.</source>
        <translation>Wählen Sie einen Trainingslayer oder erstellen Sie einen mit 'Neuer Trainingslayer ...'.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="382"/>
        <source>Choose the field that holds the classes in &apos;Class field&apos;.</source>
        <translation>Wählen Sie unter 'Klassenfeld' das Feld, das die Klassen enthält.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="384"/>
        <source>The training layer has no polygons yet: draw a few per class.</source>
        <translation>Der Trainingslayer enthält noch keine Polygone: Zeichnen Sie einige pro Klasse.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="406"/>
        <source>No previous model found: training from scratch.</source>
        <translation>Kein vorheriges Modell gefunden: Training von Grund auf.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="443"/>
        <source>RSSGL: train and classify</source>
        <translation>RSSGL: trainieren und klassifizieren</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="449"/>
        <source>Run {0}: training on {1} ({2} iterations, device {3}).</source>
        <translation>Lauf {0}: Training auf {1} ({2} Iterationen, Gerät {3}).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="457"/>
        <source>Canceling...</source>
        <translation>Wird abgebrochen ...</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="463"/>
        <source>warning: </source>
        <translation>Warnung: </translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="471"/>
        <source>Training was canceled; nothing was added.</source>
        <translation>Das Training wurde abgebrochen; es wurde nichts hinzugefügt.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="472"/>
        <source>Training was canceled.</source>
        <translation>Das Training wurde abgebrochen.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="476"/>
        <source>The last run failed: {0}</source>
        <translation>Der letzte Lauf ist fehlgeschlagen: {0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="477"/>
        <source>Training failed: {0}</source>
        <translation>Training fehlgeschlagen: {0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="488"/>
        <source>Fine-tuned; no full training in this session to compare the time with.</source>
        <translation>Feinabgestimmt; in dieser Sitzung gibt es kein vollständiges Training, mit dem die Zeit verglichen werden könnte.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/suggestions.py" line="37"/>
        <source>Where to draw next, by rank (magenta outlines on the map):</source>
        <translation>Wo als Nächstes zeichnen, nach Rang (magentafarbene Umrisse auf der Karte):</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/suggestions.py" line="27"/>
        <source>{0} or {1}: {2} % / {3} %</source>
        <translation>{0} oder {1}: {2} % / {3} %</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/suggestions.py" line="38"/>
        <source>Region {0}: {1} ({2} px)</source>
        <translation>Region {0}: {1} ({2} Pixel)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="538"/>
        <source> (run {0})</source>
        <translation> (Lauf {0})</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="545"/>
        <source>Where to draw next</source>
        <translation>Wo als Nächstes zeichnen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="548"/>
        <source>RSSGL confidence</source>
        <translation>RSSGL-Konfidenz</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="529"/>
        <source>Training report</source>
        <translation>Trainingsbericht</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="498"/>
        <source>Classification added ({0:.0f} s). The validation OA ({1}) comes from pixels of your own polygons and overstates the map&apos;s accuracy.</source>
        <translation>Klassifikation hinzugefügt ({0:.0f} s). Die Validierungs-OA ({1}) stammt aus Pixeln Ihrer eigenen Polygone und überschätzt die Genauigkeit der Karte.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="509"/>
        <source>Validation OA {0} (pixels of the training polygons: optimistic), {1} classes, best epoch {2} of {3}, {4:.1f} s on {5}.</source>
        <translation>Validierungs-OA {0} (Pixel der Trainingspolygone: optimistisch), {1} Klassen, beste Epoche {2} von {3}, {4:.1f} s auf {5}.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="145"/>
        <source>Off (fastest)</source>
        <translation>Aus (am schnellsten)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="145"/>
        <source>3 folds of whole polygons (4x the time)</source>
        <translation>3 Folds ganzer Polygone (4-fache Zeit)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="145"/>
        <source>5 folds of whole polygons (6x the time)</source>
        <translation>5 Folds ganzer Polygone (6-fache Zeit)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="148"/>
        <source>Before the final training, train one model per fold without that fold&apos;s polygons and test it on them: an estimate of the accuracy where you drew nothing. Needs 2 or more separate polygons per class.</source>
        <translation>Vor dem endgültigen Training wird je Fold ein Modell ohne die Polygone dieses Folds trainiert und an ihnen getestet: eine Schätzung der Genauigkeit dort, wo Sie nichts gezeichnet haben. Erfordert mindestens 2 getrennte Polygone pro Klasse.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="159"/>
        <source>Accuracy estimate</source>
        <translation>Genauigkeitsschätzung</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="518"/>
        <source>&lt;b&gt;Cross-validated OA {0:.1f}%&lt;/b&gt; (+- {1:.1f}) over {2} folds of whole polygons: the accuracy to expect where you drew nothing.</source>
        <translation>&lt;b&gt;Kreuzvalidierte OA {0:.1f}%&lt;/b&gt; (+- {1:.1f}) über {2} Folds ganzer Polygone: die zu erwartende Genauigkeit dort, wo Sie nichts gezeichnet haben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="495"/>
        <source>Classification added ({0:.0f} s). Cross-validated OA {1:.1f}%: the accuracy to expect where you drew nothing.</source>
        <translation>Klassifikation hinzugefügt ({0:.0f} s). Kreuzvalidierte Gesamtgenauigkeit {1:.1f}%: die Genauigkeit, die dort zu erwarten ist, wo Sie nichts gezeichnet haben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="502"/>
        <source>Classification added ({0:.0f} s). For an accuracy estimate, choose 3 or 5 folds under &apos;Accuracy estimate&apos;, or assess the map with independent reference samples.</source>
        <translation>Klassifikation hinzugefügt ({0:.0f} s). Für eine Genauigkeitsschätzung wählen Sie unter „Genauigkeitsschätzung“ 3 oder 5 Teilmengen, oder prüfen Sie die Karte mit unabhängigen Referenzstichproben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="81"/>
        <source>Training samples (polygons or points)</source>
        <translation>Trainingsstichproben (Polygone oder Punkte)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="139"/>
        <source>Draw points</source>
        <translation>Punkte zeichnen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="70"/>
        <source>all bands; e.g. 1-129, 136-224 or drop 400-450 nm</source>
        <translation>alle Bänder; z. B. 1-129, 136-224 oder drop 400-450 nm</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="71"/>
        <source>Bands to train on: numbers and ranges keep those bands (&apos;1-129, 136-224&apos;); &apos;drop&apos; leaves them out (&apos;drop 130-135&apos;); ranges ending in &apos;nm&apos; select wavelengths. Bands the file flags bad or without data are always left out. Empty: all bands.</source>
        <translation>Bänder für das Training: Nummern und Bereiche behalten diese Bänder ('1-129, 136-224'); 'drop' lässt sie weg ('drop 130-135'); Bereiche mit 'nm' wählen Wellenlängen. Bänder, die die Datei als schlecht markiert oder die keine Daten enthalten, werden immer weggelassen. Leer: alle Bänder.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="75"/>
        <source>Drop the water-vapour bands (1340-1460, 1790-1960, &gt;2450 nm)</source>
        <translation>Wasserdampfbänder weglassen (1340-1460, 1790-1960, &gt;2450 nm)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="76"/>
        <source>Bands</source>
        <translation>Bänder</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="363"/>
        <source>{0} shown in true colour: bands {1}, {2}, {3} as red, green, blue.</source>
        <translation>{0} in Echtfarben dargestellt: Bänder {1}, {2}, {3} als Rot, Grün, Blau.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="514"/>
        <source>Trained on every pixel of your samples: {0} classes, epochs trained: {1}, {2:.1f} s on {3}.</source>
        <translation>Auf jedem Pixel Ihrer Stichproben trainiert: {0} Klassen, trainierte Epochen: {1}, {2:.1f} s auf {3}.</translation>
    </message>
    <message>
        <source>Copy diagnostics</source>
        <translation>Diagnose kopieren</translation>
    </message>
    <message>
        <source>Put the versions of QGIS, Python, PyTorch, CUDA and the GPU, the plugin&apos;s folders and the last error on the clipboard, for a bug report.</source>
        <translation>Die Versionen von QGIS, Python, PyTorch, CUDA und der GPU, die Ordner des Plugins und den letzten Fehler für einen Fehlerbericht in die Zwischenablage kopieren.</translation>
    </message>
    <message>
        <source>Diagnostics copied to the clipboard.</source>
        <translation>Diagnose in die Zwischenablage kopiert.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="52"/>
        <source>Stage two&apos;s map replaces stage one&apos;s: in the cross-validation RSSGL helped (its weight in the map: {0:.2f}).</source>
        <translation>Die Karte von Stufe zwei ersetzt die von Stufe eins: In der Kreuzvalidierung hat RSSGL geholfen (sein Gewicht in der Karte: {0:.2f}).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="54"/>
        <source>Stage one&apos;s map stays: without a cross-validation nothing shows that RSSGL helps. Choose 3 or 5 folds under &apos;Accuracy estimate&apos; to let it compete.</source>
        <translation>Die Karte von Stufe eins bleibt: Ohne Kreuzvalidierung zeigt nichts, dass RSSGL hilft. Wählen Sie unter „Genauigkeitsschätzung“ 3 oder 5 Teilmengen, damit es antreten kann.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="56"/>
        <source>Stage one&apos;s map stays: the cross-validation could not run (it needs 2 or more separate polygons per class), so nothing shows that RSSGL helps.</source>
        <translation>Die Karte von Stufe eins bleibt: Die Kreuzvalidierung konnte nicht laufen (sie braucht 2 oder mehr getrennte Polygone je Klasse), also zeigt nichts, dass RSSGL hilft.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="57"/>
        <source>Stage one&apos;s map stays: in the cross-validation RSSGL did not beat the spectral model alone.</source>
        <translation>Die Karte von Stufe eins bleibt: In der Kreuzvalidierung war RSSGL nicht besser als das Spektralmodell allein.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="63"/>
        <source>&lt;b&gt;Stage one&lt;/b&gt;: the spectral model&apos;s map ({0} classes, {1:.1f} s on {2}); RSSGL was not trained.</source>
        <translation>&lt;b&gt;Stufe eins&lt;/b&gt;: die Karte des Spektralmodells ({0} Klassen, {1:.1f} s auf {2}); RSSGL wurde nicht trainiert.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="88"/>
        <source>Training report (stage two)</source>
        <translation>Trainingsbericht (Stufe zwei)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="125"/>
        <source>A new run starts: stage two (RSSGL) of the previous run is canceled.</source>
        <translation>Ein neuer Lauf beginnt: Stufe zwei (RSSGL) des vorigen Laufs wird abgebrochen.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="133"/>
        <source>Stage one: %p%</source>
        <translation>Stufe eins: %p%</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="145"/>
        <source>RSSGL: refine with RSSGL</source>
        <translation>RSSGL: mit RSSGL verfeinern</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="146"/>
        <source>Stage two (RSSGL): %p%</source>
        <translation>Stufe zwei (RSSGL): %p%</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="147"/>
        <source>Stage two: RSSGL trains in the background ({0} iterations, {1} cross-validation folds); look at stage one&apos;s map and draw again meanwhile.</source>
        <translation>Stufe zwei: RSSGL trainiert im Hintergrund ({0} Iterationen, {1} Teilmengen der Kreuzvalidierung); sehen Sie sich inzwischen die Karte von Stufe eins an und zeichnen Sie weiter.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="136"/>
        <source>Stage one: the spectral model&apos;s map first, in seconds.</source>
        <translation>Stufe eins: zuerst die Karte des Spektralmodells, in Sekunden.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="193"/>
        <source>Canceling stage two (RSSGL); stage one&apos;s map stays.</source>
        <translation>Stufe zwei (RSSGL) wird abgebrochen; die Karte von Stufe eins bleibt.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="224"/>
        <source>Stage two: RSSGL is training in the background; its map replaces this one only if the cross-validation shows that RSSGL helps.</source>
        <translation>Stufe zwei: RSSGL trainiert im Hintergrund; seine Karte ersetzt diese nur, wenn die Kreuzvalidierung zeigt, dass RSSGL hilft.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="226"/>
        <source>RSSGL was not trained: on a CPU it takes minutes. Press &apos;Refine with RSSGL&apos;, or tick &apos;Also train RSSGL on the CPU (minutes)&apos;.</source>
        <translation>RSSGL wurde nicht trainiert: Auf einer CPU dauert es Minuten. Drücken Sie „Mit RSSGL verfeinern“ oder kreuzen Sie „RSSGL auch auf der CPU trainieren (Minuten)“ an.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="229"/>
        <source>Stage one&apos;s map added ({0:.0f} s): the spectral model&apos;s map.</source>
        <translation>Karte von Stufe eins hinzugefügt ({0:.0f} s): die Karte des Spektralmodells.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="236"/>
        <source>Stage two (RSSGL) was canceled; the map is stage one&apos;s.</source>
        <translation>Stufe zwei (RSSGL) wurde abgebrochen; die Karte ist die von Stufe eins.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="238"/>
        <source>Stage two (RSSGL) failed: {0}</source>
        <translation>Stufe zwei (RSSGL) ist fehlgeschlagen: {0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="181"/>
        <source>Also train RSSGL on the CPU (minutes)</source>
        <translation>RSSGL auch auf der CPU trainieren (Minuten)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="182"/>
        <source>The spectral model&apos;s map comes first, in seconds. Then RSSGL trains in the background: at once on a CUDA GPU; on the CPU only with this box ticked, or when you press &apos;Refine with RSSGL&apos;. Its map replaces the first one only where the cross-validation shows that RSSGL helps.</source>
        <translation>Die Karte des Spektralmodells kommt zuerst, in Sekunden. Dann trainiert RSSGL im Hintergrund: sofort auf einer CUDA-GPU; auf der CPU nur, wenn dieses Kästchen angekreuzt ist oder Sie „Mit RSSGL verfeinern“ drücken. Seine Karte ersetzt die erste nur, wenn die Kreuzvalidierung zeigt, dass RSSGL hilft.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="182"/>
        <source>Refine with RSSGL</source>
        <translation>Mit RSSGL verfeinern</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="197"/>
        <source>Train RSSGL on the last run&apos;s polygons in the background (minutes on a CPU); its map replaces the spectral model&apos;s only where the cross-validation shows that RSSGL helps.</source>
        <translation>RSSGL im Hintergrund auf den Polygonen des letzten Laufs trainieren (auf einer CPU Minuten); seine Karte ersetzt die des Spektralmodells nur, wenn die Kreuzvalidierung zeigt, dass RSSGL hilft.</translation>
    </message>
</context>
<context>
    <name>RssglHelp</name>
    <message>
        <location filename="../rssgl_qgis/processing/help.py"/>
        <source>Whether RSSGL is trained. &apos;Automatic: on a GPU only&apos; (the default) trains RSSGL where a CUDA GPU is found (seconds to minutes) and elsewhere gives the stage-one map: the per-pixel spectral model&apos;s map in seconds, without cross-validation. &apos;Always&apos; trains RSSGL on a CPU too: minutes. &apos;Never: spectral model only&apos; fits the per-pixel spectral model alone (stage one) on every device: the map in seconds, no cross-validation, and a model file without an RSSGL network, which &apos;Classify with RSSGL&apos; classifies pixel by pixel but which cannot be fine-tuned (a stage-one model from &apos;Automatic&apos; on a CPU is the same). The log and the report say which stage made the map.</source>
        <translation>Ob RSSGL trainiert wird. &apos;Automatisch: nur auf einer GPU&apos; (Standard) trainiert RSSGL, wo eine CUDA-GPU gefunden wird (Sekunden bis Minuten), und liefert sonst die Karte der Stufe eins: die Karte des pixelweisen Spektralmodells in Sekunden, ohne Kreuzvalidierung. &apos;Immer&apos; trainiert RSSGL auch auf einer CPU: Minuten. &apos;Nie: nur das Spektralmodell&apos; passt auf jedem Gerät nur das pixelweise Spektralmodell an (Stufe eins): die Karte in Sekunden, keine Kreuzvalidierung und eine Modelldatei ohne RSSGL-Netz, die &apos;Mit RSSGL klassifizieren&apos; Pixel für Pixel klassifiziert, die sich aber nicht feinabstimmen lässt (ein Stufe-eins-Modell aus &apos;Automatisch&apos; auf einer CPU ebenso). Protokoll und Bericht nennen die Stufe, die die Karte erzeugt hat.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="54"/>
        <source>The hyperspectral raster to learn from (any GDAL raster; nodata and NaN pixels are ignored).</source>
        <translation>Das hyperspektrale Raster, aus dem gelernt wird (jedes GDAL-Raster; NoData- und NaN-Pixel werden ignoriert).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="56"/>
        <source>Training samples as polygons or points. Polygons are burnt into the raster grid with the pixel-centre rule; samples in another CRS are reprojected; samples outside the raster are dropped with a warning. Use either this or the label raster. Only selected features are used when &apos;Selected features only&apos; is ticked.</source>
        <translation>Trainingsstichproben als Polygone oder Punkte. Polygone werden nach der Pixelmittelpunkt-Regel in das Rasterraster gebrannt; Stichproben in einem anderen KBS werden umprojiziert; Stichproben außerhalb des Rasters werden mit einer Warnung verworfen. Verwenden Sie entweder dies oder das Label-Raster. Ist 'Nur gewählte Objekte' angehakt, werden nur die gewählten Objekte verwendet.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="61"/>
        <source>Field of the training samples that holds the class: whole numbers (class values, 0 is ignored) or text (each distinct text becomes a class, numbered 1..N in alphabetical order; the text becomes the class name).</source>
        <translation>Feld der Trainingsstichproben, das die Klasse enthält: ganze Zahlen (Klassenwerte, 0 wird ignoriert) oder Text (jeder unterschiedliche Text wird eine Klasse, alphabetisch mit 1..N nummeriert; der Text wird zum Klassennamen).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="65"/>
        <source>Training samples as a label raster on the same grid as the input raster: 0 or nodata = unlabelled, other values = classes. Use either this or the vector samples.</source>
        <translation>Trainingsstichproben als Label-Raster auf demselben Gitter wie das Eingaberaster: 0 oder NoData = unbeschriftet, andere Werte = Klassen. Verwenden Sie entweder dies oder die Vektorstichproben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="73"/>
        <source>Number of training iterations (one iteration = one pass of the whole scene with up to 10 pixels per class). The paper uses 600-1000.</source>
        <translation>Anzahl der Trainingsiterationen (eine Iteration = ein Durchlauf der ganzen Szene mit bis zu 10 Pixeln pro Klasse). Der Artikel verwendet 600-1000.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="75"/>
        <source>Initial learning rate of the SGD optimiser; it decays with a polynomial schedule. 0.005 is the paper&apos;s value.</source>
        <translation>Anfängliche Lernrate des SGD-Optimierers; sie nimmt nach einem polynomiellen Plan ab. 0,005 ist der Wert aus dem Artikel.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="77"/>
        <source>Size of the ConvLSTM&apos;s 3D kernel (spectral depth x rows x columns). Auto picks 3x3x3 for small scenes and 3x5x5 otherwise, as the paper does.</source>
        <translation>Größe des 3D-Kernels der ConvLSTM (spektrale Tiefe x Zeilen x Spalten). Automatisch wählt 3x3x3 für kleine Szenen und sonst 3x5x5, wie im Artikel.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="80"/>
        <source>Weight of the statistical loss that pulls pixels of a class together and pushes classes apart (0.001 in the paper; 0 turns it off).</source>
        <translation>Gewicht des statistischen Verlusts, der Pixel einer Klasse zusammenzieht und Klassen auseinanderschiebt (0,001 im Artikel; 0 schaltet ihn ab).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="83"/>
        <source>Random seed: the same seed, data and device give the same model.</source>
        <translation>Zufallsstartwert: Gleicher Startwert, gleiche Daten und gleiches Gerät ergeben dasselbe Modell.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="84"/>
        <source>Where to train: Auto uses an NVIDIA GPU when torch sees one and the CPU otherwise; CUDA fails clearly when there is no GPU.</source>
        <translation>Wo trainiert wird: Automatisch nutzt eine NVIDIA-GPU, wenn torch eine findet, sonst die CPU; CUDA bricht mit einer klaren Meldung ab, wenn keine GPU vorhanden ist.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="119"/>
        <source>The trained model file (.rssgl: safetensors weights and JSON metadata, never pickled code).</source>
        <translation>Die trainierte Modelldatei (.rssgl: safetensors-Gewichte und JSON-Metadaten, niemals gepickelter Code).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="121"/>
        <source>Optional: classify the training raster right away and write the class map here (GeoTIFF, styled).</source>
        <translation>Optional: Das Trainingsraster sofort klassifizieren und die Klassenkarte hierhin schreiben (GeoTIFF, mit Stil).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="123"/>
        <source>Optional: the model&apos;s confidence per pixel (highest class probability, 0-1, float32).</source>
        <translation>Optional: die Konfidenz des Modells pro Pixel (höchste Klassenwahrscheinlichkeit, 0-1, float32).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="127"/>
        <source>Optional HTML training report: loss and validation accuracy per epoch, classes, parameters, device and timing.</source>
        <translation>Optionaler HTML-Trainingsbericht: Verlust und Validierungsgenauigkeit pro Epoche, Klassen, Parameter, Gerät und Zeiten.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py"/>
        <source>A model file (.rssgl) written by &apos;Train RSSGL&apos;, with RSSGL or with the spectral model only (RSSGL stage &apos;Never&apos;; then each pixel is classified on its own, without tiles&apos; overlaps).</source>
        <translation>Eine von &apos;RSSGL trainieren&apos; geschriebene Modelldatei (.rssgl), mit RSSGL oder nur mit dem Spektralmodell (RSSGL-Stufe &apos;Nie&apos;; dann wird jedes Pixel für sich klassifiziert, ohne Überlappung der Kacheln).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="136"/>
        <source>Optional: only classify inside this mask. A polygon layer (pixels whose centre is inside a polygon) or a raster on the same grid (non-zero pixels). Pixels outside are written as 0 (no data).</source>
        <translation>Optional: nur innerhalb dieser Maske klassifizieren. Ein Polygonlayer (Pixel, deren Mittelpunkt in einem Polygon liegt) oder ein Raster auf demselben Gitter (Pixel ungleich null). Pixel außerhalb werden als 0 (NoData) geschrieben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="149"/>
        <source>The classification: GeoTIFF of class values (0 = no data), smallest unsigned integer type, with colour table, class names and a .qml style.</source>
        <translation>Die Klassifikation: GeoTIFF mit Klassenwerten (0 = NoData), kleinster vorzeichenloser Ganzzahltyp, mit Farbtabelle, Klassennamen und .qml-Stil.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="152"/>
        <source>Optional: the highest class probability per pixel (0-1, float32); low values show where more samples would help.</source>
        <translation>Optional: die höchste Klassenwahrscheinlichkeit pro Pixel (0-1, float32); niedrige Werte zeigen, wo weitere Stichproben helfen würden.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="154"/>
        <source>Optional: one float32 band per class with its probability (band names are the class names).</source>
        <translation>Optional: ein float32-Kanal pro Klasse mit ihrer Wahrscheinlichkeit (Kanalnamen sind die Klassennamen).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="158"/>
        <source>The classification raster to assess (class values, 0 = no data), e.g. the output of &apos;Classify with RSSGL&apos;.</source>
        <translation>Das zu bewertende Klassifikationsraster (Klassenwerte, 0 = NoData), z. B. die Ausgabe von 'Mit RSSGL klassifizieren'.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="160"/>
        <source>Reference samples as polygons or points (reprojected and burnt into the classification&apos;s grid). Use either this or the reference raster.</source>
        <translation>Referenzstichproben als Polygone oder Punkte (umprojiziert und in das Gitter der Klassifikation gebrannt). Verwenden Sie entweder dies oder das Referenzraster.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="163"/>
        <source>Field of the reference samples holding the class: the class value, or the class name (matched to the classification&apos;s class names).</source>
        <translation>Feld der Referenzstichproben mit der Klasse: der Klassenwert oder der Klassenname (wird den Klassennamen der Klassifikation zugeordnet).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="166"/>
        <source>Reference as a label raster on the classification&apos;s grid: 0 or nodata = not assessed.</source>
        <translation>Referenz als Label-Raster auf dem Gitter der Klassifikation: 0 oder NoData = nicht bewertet.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="168"/>
        <source>The HTML report (tables of all measures and the confusion matrix).</source>
        <translation>Der HTML-Bericht (Tabellen aller Maße und die Konfusionsmatrix).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="170"/>
        <source>The same measures as CSV, one value per row (metric, class_value, class_name, mapped_value, value, ci95).</source>
        <translation>Dieselben Maße als CSV, ein Wert pro Zeile (metric, class_value, class_name, mapped_value, value, ci95).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="172"/>
        <source>Output number: the overall accuracy (0-1).</source>
        <translation>Ausgabezahl: die Gesamtgenauigkeit (0-1).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="173"/>
        <source>Output number: Cohen&apos;s kappa.</source>
        <translation>Ausgabezahl: Cohens Kappa.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="125"/>
        <source>Output number: the cross-validated overall accuracy (0-1; empty without cross-validation).</source>
        <translation>Ausgabezahl: die kreuzvalidierte Gesamtgenauigkeit (0-1; leer ohne Kreuzvalidierung).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="68"/>
        <source>0 (the default): train on every sample pixel and stop when the network fits them no better (nothing held out; the cross-validation estimates the accuracy). Above 0 (up to 0.5): that share of each class&apos;s pixels is held out for choosing the best epoch, which costs accuracy with few samples.</source>
        <translation>0 (Standard): auf jedem Stichprobenpixel trainieren und aufhören, sobald das Netz sie nicht mehr besser trifft (nichts wird zurückgehalten; die Kreuzvalidierung schätzt die Genauigkeit). Über 0 (bis 0,5): dieser Anteil der Pixel jeder Klasse wird zur Wahl der besten Epoche zurückgehalten, was bei wenigen Stichproben Genauigkeit kostet.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="91"/>
        <source>Early stopping: stop after this many epochs (of 10 iterations) in which the training pixels (or, with a validation share, the validation pixels) were classified no better.</source>
        <translation>Frühes Beenden: nach so vielen Epochen (zu je 10 Iterationen) aufhören, in denen die Trainingspixel (oder, mit einem Validierungsanteil, die Validierungspixel) nicht besser klassifiziert wurden.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="94"/>
        <source>Honest accuracy estimate and model choice (3 by default; 0 = none): with N folds (2-10), the samples (whole polygons; patches of a label raster) are dealt into N groups, N extra models are each trained without one group and tested on it. The same folds decide how the map combines RSSGL with a per-pixel spectral model (an SVM-like kernel classifier); every candidate&apos;s accuracy goes to the log and the report. Training takes N + 1 times as long. The saved model is trained on all samples. Classes with fewer than 2 separate samples are not tested. Without folds, RSSGL and the spectral model are pooled with equal weights. The folds run only where RSSGL is trained (see the RSSGL stage: by default not on a CPU).</source>
        <translation>Ehrliche Genauigkeitsschätzung und Modellwahl (Standard 3; 0 = keine): mit N Teilmengen (2-10) werden die Stichproben (ganze Polygone; Flecken eines Label-Rasters) auf N Gruppen verteilt, N zusätzliche Modelle werden jeweils ohne eine Gruppe trainiert und an ihr getestet. Dieselben Teilmengen entscheiden, wie die Karte RSSGL mit einem pixelweisen Spektralmodell (einem SVM-ähnlichen Kernel-Klassifikator) kombiniert; die Genauigkeit jedes Kandidaten steht im Protokoll und im Bericht. Das Training dauert N + 1 mal so lange. Das gespeicherte Modell wird auf allen Stichproben trainiert. Klassen mit weniger als 2 getrennten Stichproben werden nicht getestet. Ohne Teilmengen werden RSSGL und das Spektralmodell mit gleichen Gewichten kombiniert. Die Teilmengen laufen nur, wo RSSGL trainiert wird (siehe RSSGL-Stufe: standardmäßig nicht auf einer CPU).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="105"/>
        <source>Optional: the bands to train on. Band numbers and ranges (1-based, as QGIS counts bands) keep those bands: &apos;1-129, 136-224&apos;; a leading &apos;drop&apos; leaves them out instead: &apos;drop 130-135&apos;. Ranges ending in &apos;nm&apos; select band centre wavelengths: &apos;400-1340 nm, 1460-1790 nm&apos; (the raster must record its wavelengths). Empty: every band. Bands that the file&apos;s bad-band list (bbl) flags bad, or that hold no data or one constant value, are always left out and named in the log. The model file records the bands it uses, so &apos;Classify with RSSGL&apos; picks them from a raster with all the bands.</source>
        <translation>Optional: die Bänder für das Training. Bandnummern und Bereiche (ab 1 gezählt, wie QGIS Bänder zählt) behalten diese Bänder: '1-129, 136-224'; ein vorangestelltes 'drop' lässt sie stattdessen weg: 'drop 130-135'. Bereiche mit 'nm' wählen Band-Mittenwellenlängen: '400-1340 nm, 1460-1790 nm' (das Raster muss seine Wellenlängen angeben). Leer: alle Bänder. Bänder, die die Schlechtband-Liste (bbl) der Datei als schlecht markiert oder die keine Daten oder nur einen konstanten Wert enthalten, werden immer weggelassen und im Protokoll genannt. Die Modelldatei hält die verwendeten Bänder fest, sodass 'Mit RSSGL klassifizieren' sie aus einem Raster mit allen Bändern auswählt.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="114"/>
        <source>Leave out the bands in the water-vapour absorption windows (band centres 1340-1460 nm, 1790-1960 nm and beyond 2450 nm), which are noisy or empty in EnMAP, PRISMA, EMIT and airborne products. Needs the raster&apos;s band wavelengths; combines with the band selection.</source>
        <translation>Die Bänder in den Wasserdampf-Absorptionsfenstern weglassen (Bandmitten 1340-1460 nm, 1790-1960 nm und über 2450 nm), die in EnMAP-, PRISMA-, EMIT- und Flugzeugdaten verrauscht oder leer sind. Benötigt die Bandwellenlängen des Rasters; wirkt zusammen mit der Bandauswahl.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="131"/>
        <source>The hyperspectral raster to classify. It must have the bands the model was trained on; a model trained on some of the bands picks them from a raster with more bands (by wavelength when both record them, within 2 nm, else by band number).</source>
        <translation>Das zu klassifizierende Hyperspektralraster. Es muss die Bänder enthalten, mit denen das Modell trainiert wurde; ein Modell, das mit einem Teil der Bänder trainiert wurde, wählt sie aus einem Raster mit mehr Bändern aus (nach Wellenlänge innerhalb von 2 nm, wenn beide sie angeben, sonst nach Bandnummer).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="86"/>
        <source>What the network sees at each iteration. Auto: the whole raster when the device&apos;s memory holds it (as the paper trains), else windows of 128 x 128 pixels around the samples, a few per iteration, so a flight line or a whole satellite scene trains on an 8 GB GPU. The report says which input was used.</source>
        <translation>Was das Netz in jeder Iteration sieht. Automatisch: das ganze Raster, wenn der Speicher des Geräts es fasst (so trainiert das Paper), sonst Fenster von 128 x 128 Pixeln um die Stichproben, einige pro Iteration, sodass auch ein Flugstreifen oder eine ganze Satellitenszene auf einer 8-GB-GPU trainiert. Der Bericht nennt die verwendete Eingabe.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="139"/>
        <source>RSSGL normalises with statistics of the whole scene. A raster larger than one tile is classified tile by tile; with this option the statistics are first gathered over the tiles (3 extra passes; on large rasters each pass looks at a quarter of the tiles), so the map has no tile seams. On the CPU, a raster whose layer maps fit the memory setting (up to about 1500 x 1500 pixels with 2 GiB) is instead computed layer by layer over the whole raster: exactly the whole-scene map, without extra passes. Untick it for a quicker preview (each tile normalised on its own).</source>
        <translation>RSSGL normalisiert mit Statistiken der ganzen Szene. Ein Raster, das größer als eine Kachel ist, wird Kachel für Kachel klassifiziert; mit dieser Option werden die Statistiken zuerst über die Kacheln gesammelt (3 zusätzliche Durchläufe; bei großen Rastern betrachtet jeder Durchlauf ein Viertel der Kacheln), sodass die Karte keine Kachelnähte hat. Auf der CPU wird ein Raster, dessen Schichtkarten in die Speichereinstellung passen (bis etwa 1500 x 1500 Pixel bei 2 GiB), stattdessen Schicht für Schicht über das ganze Raster berechnet: genau die Karte der Gesamtszene, ohne zusätzliche Durchläufe. Für eine schnellere Vorschau abwählen (jede Kachel wird für sich normalisiert).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="21"/>
        <source>Trains an RSSGL network (a 3D ConvLSTM with attention and a statistical loss, Wang et al. 2022) on a hyperspectral raster from a few labelled pixels. The whole scene is given to the network at once, so it learns spatial context as well as spectra; a raster too large for the device&apos;s memory is trained on windows around the samples instead. Training samples are either a vector layer (polygons or points) with a class field, or a label raster on the same grid. Every sample pixel trains the final model; a cross-validation over whole samples estimates the map&apos;s accuracy and chooses how RSSGL is combined with a per-pixel spectral model. The model file (.rssgl) keeps the class names and colours and the band statistics, and can classify other rasters with &apos;Classify with RSSGL&apos;. Bands that the file&apos;s bad-band list flags bad, or that hold no data, are left out and named in the log; the band selection and the water-vapour option leave out more. A GPU makes training much faster; on a CPU it works but is slow.</source>
        <translation>Trainiert ein RSSGL-Netz (ein 3D-ConvLSTM mit Attention und einem statistischen Verlust, Wang et al. 2022) auf einem Hyperspektralraster aus wenigen beschrifteten Pixeln. Das Netz sieht die ganze Szene auf einmal und lernt so räumlichen Kontext ebenso wie Spektren; ein Raster, das zu groß für den Speicher des Geräts ist, wird stattdessen auf Fenstern um die Stichproben trainiert. Trainingsstichproben sind entweder ein Vektorlayer (Polygone oder Punkte) mit einem Klassenfeld oder ein Labelraster auf demselben Raster. Jedes Stichprobenpixel trainiert das endgültige Modell; eine Kreuzvalidierung über ganze Stichproben schätzt die Genauigkeit der Karte und wählt, wie RSSGL mit einem pixelweisen Spektralmodell kombiniert wird. Die Modelldatei (.rssgl) enthält die Klassennamen und -farben sowie die Bandstatistiken und kann mit 'Mit RSSGL klassifizieren' andere Raster klassifizieren. Bänder, die die Schlechtband-Liste der Datei als schlecht markiert oder die keine Daten enthalten, werden weggelassen und im Protokoll genannt; die Bandauswahl und die Wasserdampf-Option lassen weitere weg. Eine GPU beschleunigt das Training stark; auf einer CPU funktioniert es, ist aber langsam.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="33"/>
        <source>Classifies a hyperspectral raster with a model trained by &apos;Train RSSGL&apos;. The raster must have the bands the model was trained on (by wavelength when both know them, else by band number); a model trained on a band subset classifies the full-band raster. The raster is processed in overlapping tiles with bounded memory, so large scenes work too. The result is a GeoTIFF of class values (0 = no data) with the class names and colours inside and a .qml style beside it; it loads as a paletted layer.</source>
        <translation>Klassifiziert ein Hyperspektralraster mit einem Modell, das mit 'RSSGL trainieren' trainiert wurde. Das Raster muss die Bänder haben, mit denen das Modell trainiert wurde (nach Wellenlänge, wenn beide sie kennen, sonst nach Bandnummer); ein Modell, das mit einem Teil der Bänder trainiert wurde, klassifiziert das Raster mit allen Bändern. Das Raster wird in überlappenden Kacheln mit begrenztem Speicher verarbeitet, sodass auch große Szenen funktionieren. Das Ergebnis ist ein GeoTIFF mit Klassenwerten (0 = keine Daten), den Klassennamen und -farben darin und einem .qml-Stil daneben; es wird als Layer mit Farbpalette geladen.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="40"/>
        <source>Compares a classification raster with reference samples (a vector layer with a class field, or a label raster) and writes an HTML and a CSV report: overall accuracy, average accuracy and kappa with 95 % confidence intervals, producer&apos;s and user&apos;s accuracy and F1 per class, the confusion matrix, the mapped area of each class in map units and the area-adjusted accuracy and areas of Olofsson et al. (2014). Classes are matched by value; a text reference field is matched to the class names of the classification. Use reference samples that were NOT used for training.</source>
        <translation>Vergleicht ein Klassifikationsraster mit Referenzstichproben (einem Vektorlayer mit Klassenfeld oder einem Labelraster) und schreibt einen HTML- und einen CSV-Bericht: Gesamtgenauigkeit, mittlere Genauigkeit und Kappa mit 95-%-Konfidenzintervallen, Hersteller- und Nutzergenauigkeit und F1 je Klasse, die Konfusionsmatrix, die kartierte Fläche jeder Klasse in Karteneinheiten sowie die flächenbereinigte Genauigkeit und Flächen nach Olofsson et al. (2014). Klassen werden nach Wert zugeordnet; ein Text-Referenzfeld wird den Klassennamen der Klassifikation zugeordnet. Verwenden Sie Referenzstichproben, die NICHT für das Training verwendet wurden.</translation>
    </message>
</context>
<context>
    <name>RssglProvider</name>
    <message>
        <location filename="../rssgl_qgis/processing/provider.py" line="31"/>
        <source>RSSGL</source>
        <translation>RSSGL</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/provider.py" line="35"/>
        <source>RSSGL hyperspectral deep classification</source>
        <translation>RSSGL – tiefe hyperspektrale Klassifikation</translation>
    </message>
</context>
<context>
    <name>RssglResults</name>
    <message>
        <location filename="../rssgl_qgis/gui/results.py" line="37"/>
        <source>QGIS could not open the classification {0}.</source>
        <translation>QGIS konnte die Klassifikation {0} nicht öffnen.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/results.py" line="52"/>
        <source>QGIS could not open the confidence raster {0}.</source>
        <translation>QGIS konnte das Konfidenzraster {0} nicht öffnen.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/results.py" line="65"/>
        <source>QGIS could not open the guidance layer {0}.</source>
        <translation>QGIS konnte den Hinweislayer {0} nicht öffnen.</translation>
    </message>
</context>
<context>
    <name>RssglTrainTask</name>
    <message>
        <location filename="../rssgl_qgis/gui/tasks.py" line="92"/>
        <source>Fine-tuning reached its best model after {0} epoch(s) / {1:.1f} s; the last full training needed {2} epoch(s) / {3:.1f} s: {4:.1f}x faster (whole runs {5:.1f} s vs {6:.1f} s).</source>
        <translation>Die Feinabstimmung erreichte ihr bestes Modell nach {0} Epoche(n) / {1:.1f} s; das letzte vollständige Training brauchte {2} Epoche(n) / {3:.1f} s: {4:.1f}-mal schneller (ganze Läufe {5:.1f} s gegenüber {6:.1f} s).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/tasks.py" line="159"/>
        <source>Fine-tuning from {0}.</source>
        <translation>Feinabstimmung ausgehend von {0}.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/tasks.py" line="191"/>
        <source>Classifying the whole raster.</source>
        <translation>Das gesamte Raster wird klassifiziert.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/tasks.py" line="209"/>
        <source>Draw next #{0}: {1} vs {2} (mean confidence {3:.2f}, {4} px).</source>
        <translation>Als Nächstes zeichnen Nr. {0}: {1} gegen {2} (mittlere Konfidenz {3:.2f}, {4} Px).</translation>
    </message>
</context>
<context>
    <name>TorchInstaller</name>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="118"/>
        <source>NVIDIA driver with CUDA {0}.{1} found: installing the CUDA build.</source>
        <translation>NVIDIA-Treiber mit CUDA {0}.{1} gefunden: Die CUDA-Version wird installiert.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="125"/>
        <source>No NVIDIA GPU found: installing the CPU build.</source>
        <translation>Keine NVIDIA-GPU gefunden: Die CPU-Version wird installiert.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="123"/>
        <source>NVIDIA driver found, but its CUDA {0}.{1} is older than the CUDA builds of PyTorch need (12.6); installing the CPU build. Update the NVIDIA driver to train on the GPU.</source>
        <translation>NVIDIA-Treiber gefunden, aber seine CUDA-Version {0}.{1} ist älter, als die CUDA-Versionen von PyTorch benötigen (12.6); die CPU-Version wird installiert. Aktualisieren Sie den NVIDIA-Treiber, um auf der GPU zu trainieren.</translation>
    </message>
    <message>
        <source>This NVIDIA GPU (compute capability {0}.{1}) needs a driver with CUDA 12.8 or newer, but the driver reports CUDA {2}.{3}; installing the CPU build. Update the NVIDIA driver to train on the GPU.</source>
        <translation>Diese NVIDIA-GPU (Compute Capability {0}.{1}) braucht einen Treiber mit CUDA 12.8 oder neuer, der Treiber meldet aber CUDA {2}.{3}; die CPU-Version wird installiert. Aktualisieren Sie den NVIDIA-Treiber, um auf der GPU zu trainieren.</translation>
    </message>
    <message>
        <source>Linux on ARM: installing the CPU build.</source>
        <translation>Linux auf ARM: Die CPU-Version wird installiert.</translation>
    </message>
    <message>
        <source>Apple Silicon Mac: installing the standard build, which can train on the Apple GPU (MPS).</source>
        <translation>Mac mit Apple Silicon: Die Standardversion wird installiert, die auf der Apple-GPU (MPS) trainieren kann.</translation>
    </message>
    <message>
        <source>macOS {0}.{1}: PyTorch 2.12 and newer need macOS 14, so the last PyTorch for your macOS (2.11) is installed. Update macOS to get current versions.</source>
        <translation>macOS {0}.{1}: PyTorch 2.12 und neuer brauchen macOS 14, daher wird die letzte PyTorch-Version für Ihr macOS (2.11) installiert. Aktualisieren Sie macOS, um aktuelle Versionen zu erhalten.</translation>
    </message>
    <message>
        <source>Intel Mac: PyTorch stopped publishing builds for Intel Macs after version 2.2; installing PyTorch 2.2, which trains on the CPU.</source>
        <translation>Intel-Mac: PyTorch veröffentlicht nach Version 2.2 keine Versionen für Intel-Macs mehr; PyTorch 2.2 wird installiert und trainiert auf der CPU.</translation>
    </message>
    <message>
        <source>Intel Mac with Python {0}.{1}: the last PyTorch for Intel Macs (2.2) exists only for Python 3.8 to 3.12, so it cannot be installed into this QGIS. Train on a Windows or Linux computer, or use a QGIS whose Python is 3.12 or older.</source>
        <translation>Intel-Mac mit Python {0}.{1}: Die letzte PyTorch-Version für Intel-Macs (2.2) gibt es nur für Python 3.8 bis 3.12, sie lässt sich daher nicht in dieses QGIS installieren. Trainieren Sie auf einem Windows- oder Linux-Rechner oder verwenden Sie ein QGIS mit Python 3.12 oder älter.</translation>
    </message>
    <message>
        <source>Intel Mac: the last PyTorch for Intel Macs (2.2) was built for NumPy 1.x and cannot exchange data with the NumPy {0}.{1} of this QGIS. Train on a Windows or Linux computer, or on an Apple Silicon Mac.</source>
        <translation>Intel-Mac: Die letzte PyTorch-Version für Intel-Macs (2.2) wurde für NumPy 1.x gebaut und kann keine Daten mit NumPy {0}.{1} dieses QGIS austauschen. Trainieren Sie auf einem Windows- oder Linux-Rechner oder auf einem Mac mit Apple Silicon.</translation>
    </message>
    <message>
        <source>This QGIS is the Intel (x86-64) build running under Rosetta on an Apple Silicon Mac. PyTorch has no current build for it and cannot use the Apple GPU from it: install the Apple Silicon (arm64) build of QGIS from qgis.org, then install PyTorch again.</source>
        <translation>Dieses QGIS ist die Intel-Version (x86-64), die unter Rosetta auf einem Mac mit Apple Silicon läuft. Dafür gibt es keine aktuelle PyTorch-Version, und die Apple-GPU ist von dort aus nicht nutzbar: Installieren Sie die Apple-Silicon-Version (arm64) von QGIS von qgis.org und danach PyTorch erneut.</translation>
    </message>
    <message>
        <source>PyTorch publishes no build for {0} on {1}. Train on a Windows, Linux or macOS computer with an x86-64 or ARM processor.</source>
        <translation>PyTorch veröffentlicht keine Version für {0} unter {1}. Trainieren Sie auf einem Windows-, Linux- oder macOS-Rechner mit x86-64- oder ARM-Prozessor.</translation>
    </message>
    <message>
        <source>PyTorch is installed but Windows cannot load its libraries (WinError 1114 / c10.dll): the Microsoft Visual C++ Redistributable is missing or too old. Install it from {0}, then restart QGIS.</source>
        <translation>PyTorch ist installiert, aber Windows kann seine Bibliotheken nicht laden (WinError 1114 / c10.dll): Das Microsoft Visual C++ Redistributable fehlt oder ist zu alt. Installieren Sie es von {0} und starten Sie QGIS dann neu.</translation>
    </message>
    <message>
        <source>QGIS runs as {0}, which is not a Python interpreter, and no python.exe or python3 was found beside it. Open the OSGeo4W Shell (Windows Start menu) or a terminal and run the manual command there with &apos;python&apos; in place of the program name.</source>
        <translation>QGIS läuft als {0}, das kein Python-Interpreter ist, und daneben wurde weder python.exe noch python3 gefunden. Öffnen Sie die OSGeo4W Shell (Windows-Startmenü) oder ein Terminal und führen Sie dort den manuellen Befehl mit &apos;python&apos; anstelle des Programmnamens aus.</translation>
    </message>
    <message>
        <source>The folder {0} is in use (QGIS has loaded PyTorch from it). Restart QGIS, then try again.</source>
        <translation>Der Ordner {0} ist in Benutzung (QGIS hat PyTorch daraus geladen). Starten Sie QGIS neu und versuchen Sie es dann erneut.</translation>
    </message>
    <message>
        <source>The Python of this QGIS has no pip. Run &apos;{0} -m ensurepip --upgrade&apos; in a terminal (on macOS this may need administrator rights), then install again.</source>
        <translation>Das Python dieses QGIS hat kein pip. Führen Sie &apos;{0} -m ensurepip --upgrade&apos; in einem Terminal aus (unter macOS sind dafür eventuell Administratorrechte nötig) und installieren Sie dann erneut.</translation>
    </message>
    <message>
        <source>pip would have to replace the NumPy that QGIS uses; the installer never does that, because QGIS&apos;s own modules are built against it. Update QGIS, or install a PyTorch version that works with this NumPy (docs/INSTALL.md).</source>
        <translation>pip müsste das NumPy ersetzen, das QGIS verwendet; das tut der Installer nie, weil die eigenen Module von QGIS dagegen gebaut sind. Aktualisieren Sie QGIS oder installieren Sie eine PyTorch-Version, die mit diesem NumPy funktioniert (docs/INSTALL.md).</translation>
    </message>
    <message>
        <source>The folder {0} cannot be written (for example because it lies under Program Files). Set the environment variable RSSGL_DEPS_DIR to a folder you may write to (QGIS: Settings &gt; Options &gt; System &gt; Environment), restart QGIS and install again.</source>
        <translation>In den Ordner {0} kann nicht geschrieben werden (etwa weil er unter Program Files liegt). Setzen Sie die Umgebungsvariable RSSGL_DEPS_DIR auf einen Ordner, in den Sie schreiben dürfen (QGIS: Einstellungen &gt; Optionen &gt; System &gt; Umgebung), starten Sie QGIS neu und installieren Sie erneut.</translation>
    </message>
    <message>
        <source>The secure connection to the package index was refused (certificate check failed): a company proxy or an antivirus probably inspects HTTPS. Ask your IT for its root certificate and set the environment variable PIP_CERT to that file (QGIS: Settings &gt; Options &gt; System &gt; Environment), then install again. As a last resort add &apos;--trusted-host pypi.org --trusted-host files.pythonhosted.org --trusted-host download.pytorch.org&apos; to the manual command.</source>
        <translation>Die sichere Verbindung zum Paketindex wurde abgelehnt (Zertifikatsprüfung fehlgeschlagen): Vermutlich prüft ein Firmen-Proxy oder ein Virenscanner HTTPS. Fragen Sie Ihre IT nach dessen Stammzertifikat, setzen Sie die Umgebungsvariable PIP_CERT auf diese Datei (QGIS: Einstellungen &gt; Optionen &gt; System &gt; Umgebung) und installieren Sie erneut. Als letzten Ausweg ergänzen Sie den manuellen Befehl um &apos;--trusted-host pypi.org --trusted-host files.pythonhosted.org --trusted-host download.pytorch.org&apos;.</translation>
    </message>
    <message>
        <source>The connection through the proxy failed. Enter the proxy under QGIS: Settings &gt; Options &gt; Network (the installer hands it to pip), or set HTTPS_PROXY=http://user:password@proxy:port under Settings &gt; Options &gt; System &gt; Environment, then install again.</source>
        <translation>Die Verbindung über den Proxy ist fehlgeschlagen. Tragen Sie den Proxy unter QGIS: Einstellungen &gt; Optionen &gt; Netzwerk ein (der Installer gibt ihn an pip weiter) oder setzen Sie HTTPS_PROXY=http://user:password@proxy:port unter Einstellungen &gt; Optionen &gt; System &gt; Umgebung, und installieren Sie dann erneut.</translation>
    </message>
    <message>
        <source>The package index could not be reached (no connection, or a proxy is needed). Check the connection and the proxy under QGIS: Settings &gt; Options &gt; Network, or download the wheels on a connected computer and use &apos;Install from a folder...&apos; (docs/INSTALL.md).</source>
        <translation>Der Paketindex ist nicht erreichbar (keine Verbindung, oder ein Proxy wird benötigt). Prüfen Sie die Verbindung und den Proxy unter QGIS: Einstellungen &gt; Optionen &gt; Netzwerk, oder laden Sie die Wheels auf einem Rechner mit Internet herunter und verwenden Sie &apos;Aus einem Ordner installieren...&apos; (docs/INSTALL.md).</translation>
    </message>
    <message>
        <source>The installed PyTorch&apos;s CUDA build does not fit this NVIDIA driver or GPU. Update the NVIDIA driver, then install PyTorch again: the installer picks the build the driver supports (a GeForce RTX 50 / Blackwell GPU needs a driver with CUDA 12.8 or newer).</source>
        <translation>Die CUDA-Version des installierten PyTorch passt nicht zu diesem NVIDIA-Treiber oder dieser GPU. Aktualisieren Sie den NVIDIA-Treiber und installieren Sie PyTorch erneut: Der Installer wählt die Version, die der Treiber unterstützt (eine GeForce RTX 50 / Blackwell-GPU braucht einen Treiber mit CUDA 12.8 oder neuer).</translation>
    </message>
    <message>
        <source>The package index has no PyTorch for the Python {0} of this QGIS on this platform (old macOS QGIS packages ship a Python that current PyTorch no longer supports). Install a current QGIS (on an Apple Silicon Mac its Apple Silicon build) and install PyTorch again.</source>
        <translation>Der Paketindex hat kein PyTorch für das Python {0} dieses QGIS auf dieser Plattform (alte macOS-Pakete von QGIS enthalten ein Python, das aktuelles PyTorch nicht mehr unterstützt). Installieren Sie ein aktuelles QGIS (auf einem Mac mit Apple Silicon dessen Apple-Silicon-Version) und danach PyTorch erneut.</translation>
    </message>
    <message>
        <source>The disk is full: PyTorch needs about 1 GB (the CUDA build up to 5 GB). Free space and install again.</source>
        <translation>Der Datenträger ist voll: PyTorch braucht etwa 1 GB (die CUDA-Version bis zu 5 GB). Schaffen Sie Platz und installieren Sie erneut.</translation>
    </message>
</context>
<context>
    <name>TorchInstallerDialog</name>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="139"/>
        <source>Install PyTorch for RSSGL</source>
        <translation>PyTorch für RSSGL installieren</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="143"/>
        <source>{0}

RSSGL trains a deep network with PyTorch. It can be installed into a folder that belongs to this plugin ({1}); your system Python and other plugins are not changed. {2}
The download is large (about 200 MB for the CPU build, several GB for the CUDA build). Restart QGIS afterwards if PyTorch was already loaded.</source>
        <translation>{0}

RSSGL trainiert ein tiefes Netz mit PyTorch. Es kann in einen Ordner installiert werden, der zu diesem Plugin gehört ({1}); Ihr System-Python und andere Plugins bleiben unverändert. {2}
Der Download ist groß (etwa 200 MB für die CPU-Version, mehrere GB für die CUDA-Version). Starten Sie QGIS danach neu, falls PyTorch bereits geladen war.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="156"/>
        <source>Copy</source>
        <translation>Kopieren</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="168"/>
        <source>Install</source>
        <translation>Installieren</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="175"/>
        <source>Manual installation (run in a terminal):</source>
        <translation>Manuelle Installation (in einem Terminal ausführen):</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="211"/>
        <source>Could not start {0}. Run the manual command above in a terminal instead.</source>
        <translation>{0} konnte nicht gestartet werden. Führen Sie stattdessen den obigen Befehl in einem Terminal aus.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="223"/>
        <source>PyTorch was installed into {0}.</source>
        <translation>PyTorch wurde in {0} installiert.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="225"/>
        <source>pip failed (exit code {0}). Read the log above, or run the manual command.</source>
        <translation>pip ist fehlgeschlagen (Exit-Code {0}). Lesen Sie das Protokoll oben oder führen Sie den manuellen Befehl aus.</translation>
    </message>
    <message>
        <source>Install from a folder...</source>
        <translation>Aus einem Ordner installieren...</translation>
    </message>
    <message>
        <source>Remove installed PyTorch</source>
        <translation>Installiertes PyTorch entfernen</translation>
    </message>
    <message>
        <source>Folder with the PyTorch wheels</source>
        <translation>Ordner mit den PyTorch-Wheels</translation>
    </message>
    <message>
        <source>Installation canceled; nothing was changed.</source>
        <translation>Installation abgebrochen; nichts wurde geändert.</translation>
    </message>
    <message>
        <source>Delete {0} and everything the installer put there? QGIS&apos;s own Python is not touched.</source>
        <translation>{0} und alles, was der Installer dort abgelegt hat, löschen? Das Python von QGIS selbst bleibt unberührt.</translation>
    </message>
    <message>
        <source>Removed {0}. Restart QGIS if PyTorch was loaded from there.</source>
        <translation>{0} wurde entfernt. Starten Sie QGIS neu, falls PyTorch von dort geladen war.</translation>
    </message>
</context>
<context>
    <name>TorchStatus</name>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="42"/>
        <source>PyTorch is not installed: training is not possible yet.</source>
        <translation>PyTorch ist nicht installiert: Training ist noch nicht möglich.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="47"/>
        <source>PyTorch {0} is too old (RSSGL needs {1} or newer).</source>
        <translation>PyTorch {0} ist zu alt (RSSGL benötigt {1} oder neuer).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="51"/>
        <source>PyTorch is installed but fails to load: {0}</source>
        <translation>PyTorch ist installiert, lässt sich aber nicht laden: {0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="54"/>
        <source>PyTorch {0} | {1}</source>
        <translation>PyTorch {0} | {1}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="73"/>
        <source>CUDA: {0}, {1:.0f} GiB</source>
        <translation>CUDA: {0}, {1:.0f} GiB</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="79"/>
        <source>CPU only: training will be slow (CUDA failed: {0})</source>
        <translation>Nur CPU: Das Training wird langsam sein (CUDA fehlgeschlagen: {0})</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="83"/>
        <source>CPU only: training will be slow</source>
        <translation>Nur CPU: Das Training wird langsam sein</translation>
    </message>
    <message>
        <source>Apple GPU (MPS)</source>
        <translation>Apple-GPU (MPS)</translation>
    </message>
</context>
<context>
    <name>TrainRssglAlgorithm</name>
    <message>
        <location filename="../rssgl_qgis/processing/train.py"/>
        <source>RSSGL stage</source>
        <translation>RSSGL-Stufe</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py"/>
        <source>Automatic: on a GPU only (else the spectral model&apos;s map in seconds)</source>
        <translation>Automatisch: nur auf einer GPU (sonst in Sekunden die Karte des Spektralmodells)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py"/>
        <source>Always (minutes on a CPU)</source>
        <translation>Immer (Minuten auf einer CPU)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py"/>
        <source>Never: spectral model only</source>
        <translation>Nie: nur das Spektralmodell</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="63"/>
        <source>Train RSSGL</source>
        <translation>RSSGL trainieren</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="158"/>
        <source>Hyperspectral raster</source>
        <translation>Hyperspektrales Raster</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="68"/>
        <source>Training samples (polygons or points)</source>
        <translation>Trainingsstichproben (Polygone oder Punkte)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="71"/>
        <source>Class field</source>
        <translation>Klassenfeld</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="160"/>
        <source>Training samples as a label raster</source>
        <translation>Trainingsstichproben als Label-Raster</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="81"/>
        <source>Iterations</source>
        <translation>Iterationen</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="84"/>
        <source>Learning rate</source>
        <translation>Lernrate</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="89"/>
        <source>ConvLSTM kernel</source>
        <translation>ConvLSTM-Kernel</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="89"/>
        <source>Auto (from the raster size)</source>
        <translation>Automatisch (aus der Rastergröße)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="92"/>
        <source>Statistical-loss weight</source>
        <translation>Gewicht des statistischen Verlusts</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="95"/>
        <source>Random seed</source>
        <translation>Zufallsstartwert</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="98"/>
        <source>Device</source>
        <translation>Gerät</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="98"/>
        <source>Auto (GPU when available)</source>
        <translation>Automatisch (GPU, falls vorhanden)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="107"/>
        <source>Early-stopping patience (epochs)</source>
        <translation>Geduld für frühes Beenden (Epochen)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="119"/>
        <source>Model file</source>
        <translation>Modelldatei</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="119"/>
        <source>RSSGL model (*.rssgl)</source>
        <translation>RSSGL-Modell (*.rssgl)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="121"/>
        <source>Classification of the training raster</source>
        <translation>Klassifikation des Trainingsrasters</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="124"/>
        <source>Confidence</source>
        <translation>Konfidenz</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="126"/>
        <source>Training report</source>
        <translation>Trainingsbericht</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="126"/>
        <source>HTML files (*.html)</source>
        <translation>HTML-Dateien (*.html)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="137"/>
        <source>Give the training samples either as a vector layer (&apos;Training samples&apos;) or as a label raster (&apos;Training samples as a label raster&apos;), not both or neither.</source>
        <translation>Geben Sie die Trainingsstichproben entweder als Vektorlayer ('Trainingsstichproben') oder als Label-Raster ('Trainingsstichproben als Label-Raster') an, nicht beides und nicht keines von beiden.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="140"/>
        <source>Choose the &apos;Class field&apos; of the training samples.</source>
        <translation>Wählen Sie das 'Klassenfeld' der Trainingsstichproben.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="154"/>
        <source>The RSSGL engine could not be loaded ({}). Install PyTorch for the Python that QGIS uses (the RSSGL dock offers to do it).</source>
        <translation>Die RSSGL-Engine konnte nicht geladen werden ({}). Installieren Sie PyTorch für das Python, das QGIS verwendet (das RSSGL-Dock bietet dies an).</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="198"/>
        <source>Validation overall accuracy of the kept model: {:.2f} %</source>
        <translation>Validierungs-Gesamtgenauigkeit des behaltenen Modells: {:.2f} %</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="207"/>
        <source>RSSGL classification</source>
        <translation>RSSGL-Klassifikation</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="209"/>
        <source>RSSGL confidence</source>
        <translation>RSSGL-Konfidenz</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="110"/>
        <source>Cross-validation folds over whole samples (0 = none)</source>
        <translation>Kreuzvalidierungs-Folds über ganze Stichproben (0 = keine)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="143"/>
        <source>Cross-validation needs at least 2 folds; choose 0 for none, or 2 to {}.</source>
        <translation>Die Kreuzvalidierung braucht mindestens 2 Folds; wählen Sie 0 für keine oder 2 bis {}.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="152"/>
        <source>The model file &apos;{}&apos; must end in .rssgl, the extension &apos;Classify with RSSGL&apos; reads; choose a name such as &apos;{}.rssgl&apos;.</source>
        <translation>Die Modelldatei '{}' muss auf .rssgl enden, die Endung, die 'Mit RSSGL klassifizieren' liest; wählen Sie einen Namen wie '{}.rssgl'.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="204"/>
        <source>Cross-validated overall accuracy ({} folds of whole samples): {:.2f} % (+- {:.2f})</source>
        <translation>Kreuzvalidierte Gesamtgenauigkeit ({} Folds ganzer Stichproben): {:.2f} % (+- {:.2f})</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="129"/>
        <source>Cross-validated overall accuracy</source>
        <translation>Kreuzvalidierte Gesamtgenauigkeit</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="76"/>
        <source>Validation share (0 = train on every sample pixel)</source>
        <translation>Validierungsanteil (0 = auf jedem Stichprobenpixel trainieren)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="113"/>
        <source>Band selection (e.g. &apos;1-129, 136-224&apos;, &apos;drop 130-135&apos;, &apos;400-1340 nm&apos;; empty = all)</source>
        <translation>Bandauswahl (z. B. '1-129, 136-224', 'drop 130-135', '400-1340 nm'; leer = alle)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="116"/>
        <source>Drop the water-vapour bands (1340-1460 nm, 1790-1960 nm, beyond 2450 nm)</source>
        <translation>Wasserdampfbänder weglassen (1340-1460 nm, 1790-1960 nm, über 2450 nm)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="101"/>
        <source>Training input</source>
        <translation>Trainingseingabe</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="101"/>
        <source>Auto (the whole raster when it fits the device&apos;s memory, else windows)</source>
        <translation>Automatisch (das ganze Raster, wenn es in den Speicher des Geräts passt, sonst Fenster)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="101"/>
        <source>The whole raster at every iteration</source>
        <translation>Das ganze Raster in jeder Iteration</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="101"/>
        <source>Windows around the samples (memory independent of the raster size)</source>
        <translation>Fenster um die Stichproben (Speicher unabhängig von der Rastergröße)</translation>
    </message>
</context>
<context>
    <name>TrainingLayer</name>
    <message>
        <location filename="../rssgl_qgis/gui/training_layer.py" line="82"/>
        <source>The file {0} exists already; choose another name so it is not overwritten.</source>
        <translation>Die Datei {0} existiert bereits; wählen Sie einen anderen Namen, damit sie nicht überschrieben wird.</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/training_layer.py" line="99"/>
        <source>Could not create {0}: {1}</source>
        <translation>{0} konnte nicht erstellt werden: {1}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/training_layer.py" line="105"/>
        <source>The new training layer {0} could not be opened.</source>
        <translation>Der neue Trainingslayer {0} konnte nicht geöffnet werden.</translation>
    </message>
</context>
</TS>
