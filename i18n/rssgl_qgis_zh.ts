<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AssessAccuracyAlgorithm</name>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="38"/>
        <source>Assess accuracy</source>
        <translation>评估精度</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="75"/>
        <source>Classification</source>
        <translation>分类结果</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="43"/>
        <source>Reference samples (polygons or points)</source>
        <translation>参考样本（多边形或点）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="46"/>
        <source>Reference class field</source>
        <translation>参考类别字段</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="77"/>
        <source>Reference as a label raster</source>
        <translation>以标签栅格作为参考</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="51"/>
        <source>Accuracy report (HTML)</source>
        <translation>精度报告（HTML）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="51"/>
        <source>HTML files (*.html)</source>
        <translation>HTML 文件 (*.html)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="53"/>
        <source>Accuracy table (CSV)</source>
        <translation>精度表（CSV）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="53"/>
        <source>CSV files (*.csv)</source>
        <translation>CSV 文件 (*.csv)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="56"/>
        <source>Overall accuracy</source>
        <translation>总体精度</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="57"/>
        <source>Kappa</source>
        <translation>Kappa 系数</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="64"/>
        <source>Give the reference either as a vector layer (&apos;Reference samples&apos;) or as a label raster (&apos;Reference as a label raster&apos;), not both or neither.</source>
        <translation>请以矢量图层（“参考样本”）或标签栅格（“以标签栅格作为参考”）二者之一提供参考数据，不能两者都给或都不给。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="67"/>
        <source>Choose the &apos;Reference class field&apos; of the reference samples.</source>
        <translation>请为参考样本选择“参考类别字段”。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="85"/>
        <source>The reference layer has no field &apos;{}&apos;.</source>
        <translation>参考图层中没有字段“{}”。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/accuracy.py" line="88"/>
        <source>&apos;{}&apos; is a text field: reference classes are matched to the classification&apos;s class names.</source>
        <translation>“{}”是文本字段：参考类别将按分类结果的类别名称进行匹配。</translation>
    </message>
</context>
<context>
    <name>ClassificationPostProcessor</name>
    <message>
        <location filename="../rssgl_qgis/processing/style.py" line="104"/>
        <source>No class names were found in {}; the layer keeps its default style.</source>
        <translation>在 {} 中未找到类别名称；该图层保留默认样式。</translation>
    </message>
</context>
<context>
    <name>ClassifyRssglAlgorithm</name>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py"/>
        <source>The model file holds the spectral model only (stage one, RSSGL not trained): each pixel is classified on its own.</source>
        <translation>模型文件仅包含光谱模型（第一阶段，未训练 RSSGL）：每个像元单独分类。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="40"/>
        <source>Classify with RSSGL</source>
        <translation>使用 RSSGL 分类</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="91"/>
        <source>Hyperspectral raster</source>
        <translation>高光谱栅格</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="45"/>
        <source>RSSGL model file</source>
        <translation>RSSGL 模型文件</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="47"/>
        <source>Mask (polygons or raster)</source>
        <translation>掩膜（多边形或栅格）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="52"/>
        <source>Classification</source>
        <translation>分类结果</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="53"/>
        <source>Confidence</source>
        <translation>置信度</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="55"/>
        <source>Class probabilities</source>
        <translation>类别概率</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="65"/>
        <source>The model file &apos;{}&apos; does not exist; choose a .rssgl file written by &apos;Train RSSGL&apos;.</source>
        <translation>模型文件“{}”不存在；请选择由“训练 RSSGL”生成的 .rssgl 文件。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="87"/>
        <source>The RSSGL engine could not be loaded ({}). Install PyTorch for the Python that QGIS uses (the RSSGL dock offers to do it).</source>
        <translation>无法加载 RSSGL 引擎（{}）。请为 QGIS 所用的 Python 安装 PyTorch（RSSGL 停靠面板可代为安装）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="108"/>
        <source>The mask &apos;{}&apos; is neither a raster nor a vector layer.</source>
        <translation>掩膜“{}”既不是栅格图层也不是矢量图层。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="112"/>
        <source>Mask: pixels whose centre lies inside &apos;{}&apos;.</source>
        <translation>掩膜：像元中心位于“{}”内的像元。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="117"/>
        <source>Loading the model</source>
        <translation>正在加载模型</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="119"/>
        <source>Model: {} bands, classes {}; running on {}.</source>
        <translation>模型：{} 个波段，类别 {}；运行于 {}。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="131"/>
        <source>RSSGL classification</source>
        <translation>RSSGL 分类</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="132"/>
        <source>RSSGL confidence</source>
        <translation>RSSGL 置信度</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/classify.py" line="49"/>
        <source>Whole-scene statistics across tiles (seamless; slower on large rasters)</source>
        <translation>跨分块使用整景统计量（无拼接缝；大栅格较慢）</translation>
    </message>
</context>
<context>
    <name>RssglAlgorithm</name>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="96"/>
        <source>Hyperspectral classification</source>
        <translation>高光谱分类</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="148"/>
        <source>The parameter &apos;{}&apos; needs a raster layer.</source>
        <translation>参数“{}”需要一个栅格图层。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="155"/>
        <source>&apos;{}&apos; is a &apos;{}&apos; layer; RSSGL reads rasters through GDAL files. Save the layer as a GeoTIFF (Export &gt; Save As) and use that file.</source>
        <translation>“{}”是“{}”类型的图层；RSSGL 通过 GDAL 文件读取栅格。请将该图层另存为 GeoTIFF（导出 &gt; 另存为）并使用该文件。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="176"/>
        <source>Could not read the vector layer given for &apos;{}&apos;.</source>
        <translation>无法读取为“{}”指定的矢量图层。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="198"/>
        <source>Canceled: no output was written.</source>
        <translation>已取消：未写入任何输出。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="203"/>
        <source>Not enough memory: {}. Close other programs, or use a smaller raster or fewer optional outputs.</source>
        <translation>内存不足：{}。请关闭其他程序，或使用更小的栅格或更少的可选输出。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/base.py" line="206"/>
        <source>Not enough memory to finish. Close other programs, or use a smaller raster or fewer optional outputs.</source>
        <translation>内存不足，无法完成。请关闭其他程序，或使用较小的栅格或较少的可选输出。</translation>
    </message>
</context>
<context>
    <name>RssglDesktop</name>
    <message>
        <location filename="../rssgl_qgis/gui/desktop.py" line="40"/>
        <source>RSSGL classification</source>
        <translation>RSSGL 分类</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/desktop.py" line="43"/>
        <source>Train a deep hyperspectral classifier on polygons you draw</source>
        <translation>用您绘制的多边形训练深度高光谱分类器</translation>
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
        <translation>RSSGL 分类</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="54"/>
        <source>Checking PyTorch...</source>
        <translation>正在检查 PyTorch……</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="56"/>
        <source>Install PyTorch...</source>
        <translation>安装 PyTorch……</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="63"/>
        <source>Image</source>
        <translation>影像</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="67"/>
        <source>Raster</source>
        <translation>栅格</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="93"/>
        <source>Layer</source>
        <translation>图层</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="94"/>
        <source>Class field</source>
        <translation>类别字段</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="96"/>
        <source>New training layer...</source>
        <translation>新建训练图层……</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="97"/>
        <source>Create a GeoPackage polygon layer with class_id and class_name fields in the raster&apos;s CRS.</source>
        <translation>在栅格的坐标参考系中创建带有 class_id 和 class_name 字段的 GeoPackage 多边形图层。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="109"/>
        <source>Add class</source>
        <translation>添加类别</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="110"/>
        <source>Rename</source>
        <translation>重命名</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="112"/>
        <source>Colour of the active class</source>
        <translation>当前类别的颜色</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="124"/>
        <source>Toggle editing</source>
        <translation>切换编辑</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="125"/>
        <source>Draw polygon</source>
        <translation>绘制多边形</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="133"/>
        <source>Training</source>
        <translation>训练</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="138"/>
        <source>The paper trains 600 iterations; fewer is faster but less accurate.</source>
        <translation>论文训练 600 次迭代；次数越少越快，但精度越低。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="140"/>
        <source>Automatic (GPU if available)</source>
        <translation>自动（如有 GPU 则使用）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="140"/>
        <source>CUDA GPU</source>
        <translation>CUDA GPU</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="140"/>
        <source>CPU</source>
        <translation>CPU</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="154"/>
        <source>Each run writes its model, maps and report into a new sub-folder here.</source>
        <translation>每次运行都会将模型、地图和报告写入此处的一个新子文件夹。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="155"/>
        <source>Continue from previous model (fine-tune)</source>
        <translation>从上一个模型继续训练（微调）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="156"/>
        <source>Keep previous results</source>
        <translation>保留之前的结果</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="157"/>
        <source>Iterations</source>
        <translation>迭代次数</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="158"/>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="160"/>
        <source>Output folder</source>
        <translation>输出文件夹</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="164"/>
        <source>Train and classify</source>
        <translation>训练并分类</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="166"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="178"/>
        <source>Results</source>
        <translation>结果</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="180"/>
        <source>No run yet.</source>
        <translation>尚未运行。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="105"/>
        <source>PyTorch is not available.</source>
        <translation>PyTorch 不可用。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="186"/>
        <source>Add a class, then draw polygons: they get the active class.</source>
        <translation>先添加一个类别，然后绘制多边形：它们会自动获得当前类别。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="188"/>
        <source>New polygons get class: {0}</source>
        <translation>新多边形的类别：{0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="207"/>
        <source>Choose or create a training layer first.</source>
        <translation>请先选择或创建训练图层。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="215"/>
        <source>The class &apos;{0}&apos; exists already.</source>
        <translation>类别“{0}”已存在。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="254"/>
        <source>Class name:</source>
        <translation>类别名称：</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="251"/>
        <source>Classes of a text field are named by their value; edit the polygons instead.</source>
        <translation>文本字段的类别以其取值命名；请改为编辑多边形。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="254"/>
        <source>Rename class</source>
        <translation>重命名类别</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="296"/>
        <source>Open or choose the raster first: the training layer uses its CRS.</source>
        <translation>请先打开或选择栅格：训练图层将使用其坐标参考系。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="282"/>
        <source>New training layer</source>
        <translation>新建训练图层</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="282"/>
        <source>GeoPackage (*.gpkg)</source>
        <translation>GeoPackage (*.gpkg)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="299"/>
        <source>Save the project first, or choose where to write the training layer.</source>
        <translation>请先保存项目，或选择训练图层的保存位置。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="300"/>
        <source>{0} training polygons</source>
        <translation>{0} 训练多边形</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="357"/>
        <source>Stop editing</source>
        <translation>停止编辑</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="357"/>
        <source>Start editing</source>
        <translation>开始编辑</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="369"/>
        <source>Choose a raster layer that is a file (GeoTIFF, ENVI, ...) in &apos;Raster&apos;.</source>
        <translation>请在“栅格”中选择一个文件形式的栅格图层（GeoTIFF、ENVI 等）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="379"/>
        <source>Choose a training layer, or create one with &apos;New training layer...&apos;.</source>
        <translation>请选择训练图层，或通过“新建训练图层……”创建一个。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="382"/>
        <source>Choose the field that holds the classes in &apos;Class field&apos;.</source>
        <translation>请在“类别字段”中选择存放类别的字段。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="384"/>
        <source>The training layer has no polygons yet: draw a few per class.</source>
        <translation>训练图层中还没有多边形：请为每个类别绘制几个。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="406"/>
        <source>No previous model found: training from scratch.</source>
        <translation>未找到之前的模型：从头开始训练。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="443"/>
        <source>RSSGL: train and classify</source>
        <translation>RSSGL：训练并分类</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="449"/>
        <source>Run {0}: training on {1} ({2} iterations, device {3}).</source>
        <translation>第 {0} 次运行：在 {1} 上训练（{2} 次迭代，设备 {3}）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="457"/>
        <source>Canceling...</source>
        <translation>正在取消……</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="463"/>
        <source>warning: </source>
        <translation>警告：</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="471"/>
        <source>Training was canceled; nothing was added.</source>
        <translation>训练已取消；未添加任何内容。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="472"/>
        <source>Training was canceled.</source>
        <translation>训练已取消。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="476"/>
        <source>The last run failed: {0}</source>
        <translation>上一次运行失败：{0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="477"/>
        <source>Training failed: {0}</source>
        <translation>训练失败：{0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="488"/>
        <source>Fine-tuned; no full training in this session to compare the time with.</source>
        <translation>已微调；本次会话中没有可用于比较耗时的完整训练。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/suggestions.py" line="37"/>
        <source>Where to draw next, by rank (magenta outlines on the map):</source>
        <translation>接下来在哪里绘制（按排名，即地图上的品红色轮廓）：</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/suggestions.py" line="27"/>
        <source>{0} or {1}: {2} % / {3} %</source>
        <translation>{0} 或 {1}：{2} % / {3} %</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/suggestions.py" line="38"/>
        <source>Region {0}: {1} ({2} px)</source>
        <translation>区域 {0}：{1}（{2} 像素）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="538"/>
        <source> (run {0})</source>
        <translation>（第 {0} 次运行）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="545"/>
        <source>Where to draw next</source>
        <translation>下一步绘制位置</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="548"/>
        <source>RSSGL confidence</source>
        <translation>RSSGL 置信度</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="529"/>
        <source>Training report</source>
        <translation>训练报告</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="498"/>
        <source>Classification added ({0:.0f} s). The validation OA ({1}) comes from pixels of your own polygons and overstates the map&apos;s accuracy.</source>
        <translation>已添加分类结果（{0:.0f} 秒）。验证总体精度（{1}）来自您自己绘制的多边形中的像素，会高估分类图的精度。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="509"/>
        <source>Validation OA {0} (pixels of the training polygons: optimistic), {1} classes, best epoch {2} of {3}, {4:.1f} s on {5}.</source>
        <translation>验证总体精度 {0}（来自训练多边形的像素：偏乐观），{1} 个类别，最佳轮次 {2}/{3}，在 {5} 上用时 {4:.1f} 秒。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="145"/>
        <source>Off (fastest)</source>
        <translation>关闭（最快）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="145"/>
        <source>3 folds of whole polygons (4x the time)</source>
        <translation>按完整多边形分 3 折（耗时 4 倍）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="145"/>
        <source>5 folds of whole polygons (6x the time)</source>
        <translation>按完整多边形分 5 折（耗时 6 倍）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="148"/>
        <source>Before the final training, train one model per fold without that fold&apos;s polygons and test it on them: an estimate of the accuracy where you drew nothing. Needs 2 or more separate polygons per class.</source>
        <translation>在最终训练之前，每折训练一个不使用该折多边形的模型，并在这些多边形上测试：估计您未绘制样本区域的精度。每个类别需要至少 2 个独立的多边形。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="159"/>
        <source>Accuracy estimate</source>
        <translation>精度估计</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="518"/>
        <source>&lt;b&gt;Cross-validated OA {0:.1f}%&lt;/b&gt; (+- {1:.1f}) over {2} folds of whole polygons: the accuracy to expect where you drew nothing.</source>
        <translation>&lt;b&gt;交叉验证总体精度 {0:.1f}%&lt;/b&gt;（+- {1:.1f}），基于 {2} 折完整多边形：您未绘制样本区域的预期精度。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="495"/>
        <source>Classification added ({0:.0f} s). Cross-validated OA {1:.1f}%: the accuracy to expect where you drew nothing.</source>
        <translation>已添加分类结果（{0:.0f} 秒）。交叉验证总体精度 {1:.1f}%：这是在您未绘制样本的地方可预期的精度。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="502"/>
        <source>Classification added ({0:.0f} s). For an accuracy estimate, choose 3 or 5 folds under &apos;Accuracy estimate&apos;, or assess the map with independent reference samples.</source>
        <translation>已添加分类结果（{0:.0f} 秒）。如需精度估计，请在“精度估计”中选择 3 折或 5 折，或用独立的参考样本评估地图。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="81"/>
        <source>Training samples (polygons or points)</source>
        <translation>训练样本（多边形或点）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="139"/>
        <source>Draw points</source>
        <translation>绘制点</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="70"/>
        <source>all bands; e.g. 1-129, 136-224 or drop 400-450 nm</source>
        <translation>全部波段；例如 1-129, 136-224 或 drop 400-450 nm</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="71"/>
        <source>Bands to train on: numbers and ranges keep those bands (&apos;1-129, 136-224&apos;); &apos;drop&apos; leaves them out (&apos;drop 130-135&apos;); ranges ending in &apos;nm&apos; select wavelengths. Bands the file flags bad or without data are always left out. Empty: all bands.</source>
        <translation>用于训练的波段：编号和范围保留这些波段（'1-129, 136-224'）；'drop' 将其排除（'drop 130-135'）；以 'nm' 结尾的范围按波长选择。文件标记为坏波段或无数据的波段总是被排除。留空：全部波段。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="75"/>
        <source>Drop the water-vapour bands (1340-1460, 1790-1960, &gt;2450 nm)</source>
        <translation>排除水汽吸收波段（1340-1460、1790-1960、&gt;2450 nm）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="76"/>
        <source>Bands</source>
        <translation>波段</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="363"/>
        <source>{0} shown in true colour: bands {1}, {2}, {3} as red, green, blue.</source>
        <translation>{0} 以真彩色显示：波段 {1}、{2}、{3} 分别作为红、绿、蓝。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock.py" line="514"/>
        <source>Trained on every pixel of your samples: {0} classes, epochs trained: {1}, {2:.1f} s on {3}.</source>
        <translation>已在您样本的每个像元上训练：{0} 个类别，训练轮数：{1}，在 {3} 上用时 {2:.1f} 秒。</translation>
    </message>
    <message>
        <source>Copy diagnostics</source>
        <translation>复制诊断信息</translation>
    </message>
    <message>
        <source>Put the versions of QGIS, Python, PyTorch, CUDA and the GPU, the plugin&apos;s folders and the last error on the clipboard, for a bug report.</source>
        <translation>将 QGIS、Python、PyTorch、CUDA 和 GPU 的版本、插件的文件夹以及最近的错误复制到剪贴板，用于错误报告。</translation>
    </message>
    <message>
        <source>Diagnostics copied to the clipboard.</source>
        <translation>诊断信息已复制到剪贴板。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="52"/>
        <source>Stage two&apos;s map replaces stage one&apos;s: in the cross-validation RSSGL helped (its weight in the map: {0:.2f}).</source>
        <translation>第二阶段的地图取代了第一阶段的地图：在交叉验证中 RSSGL 有所帮助（其在地图中的权重：{0:.2f}）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="54"/>
        <source>Stage one&apos;s map stays: without a cross-validation nothing shows that RSSGL helps. Choose 3 or 5 folds under &apos;Accuracy estimate&apos; to let it compete.</source>
        <translation>保留第一阶段的地图：没有交叉验证，无法表明 RSSGL 有帮助。请在“精度估计”中选择 3 或 5 折，让它参与比较。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="56"/>
        <source>Stage one&apos;s map stays: the cross-validation could not run (it needs 2 or more separate polygons per class), so nothing shows that RSSGL helps.</source>
        <translation>保留第一阶段的地图：交叉验证无法运行（每个类别需要 2 个或更多互相分离的多边形），因此无法表明 RSSGL 有帮助。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="57"/>
        <source>Stage one&apos;s map stays: in the cross-validation RSSGL did not beat the spectral model alone.</source>
        <translation>保留第一阶段的地图：在交叉验证中 RSSGL 没有胜过单独的光谱模型。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="63"/>
        <source>&lt;b&gt;Stage one&lt;/b&gt;: the spectral model&apos;s map ({0} classes, {1:.1f} s on {2}); RSSGL was not trained.</source>
        <translation>&lt;b&gt;第一阶段&lt;/b&gt;：光谱模型的地图（{0} 个类别，在 {2} 上用时 {1:.1f} 秒）；未训练 RSSGL。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="88"/>
        <source>Training report (stage two)</source>
        <translation>训练报告（第二阶段）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="125"/>
        <source>A new run starts: stage two (RSSGL) of the previous run is canceled.</source>
        <translation>新的运行开始：上一次运行的第二阶段（RSSGL）已取消。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="133"/>
        <source>Stage one: %p%</source>
        <translation>第一阶段：%p%</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="145"/>
        <source>RSSGL: refine with RSSGL</source>
        <translation>RSSGL：用 RSSGL 细化</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="146"/>
        <source>Stage two (RSSGL): %p%</source>
        <translation>第二阶段（RSSGL）：%p%</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="147"/>
        <source>Stage two: RSSGL trains in the background ({0} iterations, {1} cross-validation folds); look at stage one&apos;s map and draw again meanwhile.</source>
        <translation>第二阶段：RSSGL 在后台训练（{0} 次迭代，{1} 折交叉验证）；在此期间您可以查看第一阶段的地图并继续绘制。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="136"/>
        <source>Stage one: the spectral model&apos;s map first, in seconds.</source>
        <translation>第一阶段：先在几秒内得到光谱模型的地图。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="193"/>
        <source>Canceling stage two (RSSGL); stage one&apos;s map stays.</source>
        <translation>正在取消第二阶段（RSSGL）；保留第一阶段的地图。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="224"/>
        <source>Stage two: RSSGL is training in the background; its map replaces this one only if the cross-validation shows that RSSGL helps.</source>
        <translation>第二阶段：RSSGL 正在后台训练；只有当交叉验证表明 RSSGL 有帮助时，它的地图才会取代当前地图。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="226"/>
        <source>RSSGL was not trained: on a CPU it takes minutes. Press &apos;Refine with RSSGL&apos;, or tick &apos;Also train RSSGL on the CPU (minutes)&apos;.</source>
        <translation>未训练 RSSGL：在 CPU 上需要数分钟。请点击“用 RSSGL 细化”，或勾选“也在 CPU 上训练 RSSGL（需数分钟）”。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="229"/>
        <source>Stage one&apos;s map added ({0:.0f} s): the spectral model&apos;s map.</source>
        <translation>已添加第一阶段的地图（{0:.0f} 秒）：光谱模型的地图。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="236"/>
        <source>Stage two (RSSGL) was canceled; the map is stage one&apos;s.</source>
        <translation>第二阶段（RSSGL）已取消；地图为第一阶段的地图。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_runs.py" line="238"/>
        <source>Stage two (RSSGL) failed: {0}</source>
        <translation>第二阶段（RSSGL）失败：{0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="181"/>
        <source>Also train RSSGL on the CPU (minutes)</source>
        <translation>也在 CPU 上训练 RSSGL（需数分钟）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="182"/>
        <source>The spectral model&apos;s map comes first, in seconds. Then RSSGL trains in the background: at once on a CUDA GPU; on the CPU only with this box ticked, or when you press &apos;Refine with RSSGL&apos;. Its map replaces the first one only where the cross-validation shows that RSSGL helps.</source>
        <translation>光谱模型的地图最先在几秒内得到。随后 RSSGL 在后台训练：有 CUDA GPU 时立即开始；在 CPU 上仅当勾选此项或点击“用 RSSGL 细化”时才开始。只有当交叉验证表明 RSSGL 有帮助时，它的地图才会取代第一张地图。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="182"/>
        <source>Refine with RSSGL</source>
        <translation>用 RSSGL 细化</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/dock_ui.py" line="197"/>
        <source>Train RSSGL on the last run&apos;s polygons in the background (minutes on a CPU); its map replaces the spectral model&apos;s only where the cross-validation shows that RSSGL helps.</source>
        <translation>在后台用上一次运行的多边形训练 RSSGL（在 CPU 上需数分钟）；只有当交叉验证表明 RSSGL 有帮助时，它的地图才会取代光谱模型的地图。</translation>
    </message>
</context>
<context>
    <name>RssglHelp</name>
    <message>
        <location filename="../rssgl_qgis/processing/help.py"/>
        <source>Whether RSSGL is trained. &apos;Automatic: on a GPU only&apos; (the default) trains RSSGL where a CUDA GPU is found (seconds to minutes) and elsewhere gives the stage-one map: the per-pixel spectral model&apos;s map in seconds, without cross-validation. &apos;Always&apos; trains RSSGL on a CPU too: minutes. &apos;Never: spectral model only&apos; fits the per-pixel spectral model alone (stage one) on every device: the map in seconds, no cross-validation, and a model file without an RSSGL network, which &apos;Classify with RSSGL&apos; classifies pixel by pixel but which cannot be fine-tuned (a stage-one model from &apos;Automatic&apos; on a CPU is the same). The log and the report say which stage made the map.</source>
        <translation>是否训练 RSSGL。“自动：仅在 GPU 上”（默认）在找到 CUDA GPU 时训练 RSSGL（数秒到数分钟），否则给出第一阶段的分类图：逐像元光谱模型的分类图，数秒内得到，不做交叉验证。“始终”在 CPU 上也训练 RSSGL：需数分钟。“从不：仅光谱模型”在任何设备上都只拟合逐像元光谱模型（第一阶段）：数秒内得到分类图，不做交叉验证，模型文件不含 RSSGL 网络，“用 RSSGL 分类”可逐像元分类，但不能微调（在 CPU 上由“自动”得到的第一阶段模型也是如此）。日志和报告会说明分类图由哪个阶段生成。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="54"/>
        <source>The hyperspectral raster to learn from (any GDAL raster; nodata and NaN pixels are ignored).</source>
        <translation>用于学习的高光谱栅格（任意 GDAL 栅格；忽略无数据和 NaN 像元）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="56"/>
        <source>Training samples as polygons or points. Polygons are burnt into the raster grid with the pixel-centre rule; samples in another CRS are reprojected; samples outside the raster are dropped with a warning. Use either this or the label raster. Only selected features are used when &apos;Selected features only&apos; is ticked.</source>
        <translation>以多边形或点表示的训练样本。多边形按像元中心规则栅格化到栅格网格；其他坐标参考系的样本会被重投影；栅格范围外的样本会被丢弃并给出警告。此项与标签栅格二选一。勾选“仅选中要素”时只使用选中的要素。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="61"/>
        <source>Field of the training samples that holds the class: whole numbers (class values, 0 is ignored) or text (each distinct text becomes a class, numbered 1..N in alphabetical order; the text becomes the class name).</source>
        <translation>训练样本中存放类别的字段：整数（类别值，忽略 0）或文本（每个不同的文本成为一个类别，按字母顺序编号为 1..N，文本即类别名称）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="65"/>
        <source>Training samples as a label raster on the same grid as the input raster: 0 or nodata = unlabelled, other values = classes. Use either this or the vector samples.</source>
        <translation>与输入栅格同网格的标签栅格形式的训练样本：0 或无数据表示未标注，其他值表示类别。此项与矢量样本二选一。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="73"/>
        <source>Number of training iterations (one iteration = one pass of the whole scene with up to 10 pixels per class). The paper uses 600-1000.</source>
        <translation>训练迭代次数（一次迭代 = 对整景进行一次前向，每类最多 10 个像元）。论文使用 600-1000 次。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="75"/>
        <source>Initial learning rate of the SGD optimiser; it decays with a polynomial schedule. 0.005 is the paper&apos;s value.</source>
        <translation>SGD 优化器的初始学习率，按多项式策略衰减。论文取值为 0.005。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="77"/>
        <source>Size of the ConvLSTM&apos;s 3D kernel (spectral depth x rows x columns). Auto picks 3x3x3 for small scenes and 3x5x5 otherwise, as the paper does.</source>
        <translation>ConvLSTM 三维卷积核的大小（光谱深度 x 行 x 列）。自动模式与论文一致：小场景取 3x3x3，否则取 3x5x5。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="80"/>
        <source>Weight of the statistical loss that pulls pixels of a class together and pushes classes apart (0.001 in the paper; 0 turns it off).</source>
        <translation>统计损失的权重，它使同类像元聚拢、不同类别分离（论文为 0.001；0 表示关闭）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="83"/>
        <source>Random seed: the same seed, data and device give the same model.</source>
        <translation>随机种子：相同的种子、数据和设备会得到相同的模型。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="84"/>
        <source>Where to train: Auto uses an NVIDIA GPU when torch sees one and the CPU otherwise; CUDA fails clearly when there is no GPU.</source>
        <translation>训练位置：自动模式在 torch 检测到 NVIDIA GPU 时使用 GPU，否则使用 CPU；选择 CUDA 而没有 GPU 时会给出明确的错误。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="119"/>
        <source>The trained model file (.rssgl: safetensors weights and JSON metadata, never pickled code).</source>
        <translation>训练得到的模型文件（.rssgl：safetensors 权重和 JSON 元数据，绝不包含 pickle 代码）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="121"/>
        <source>Optional: classify the training raster right away and write the class map here (GeoTIFF, styled).</source>
        <translation>可选：立即对训练栅格进行分类，并将分类图写到此处（带样式的 GeoTIFF）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="123"/>
        <source>Optional: the model&apos;s confidence per pixel (highest class probability, 0-1, float32).</source>
        <translation>可选：模型在每个像元上的置信度（最高类别概率，0-1，float32）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="127"/>
        <source>Optional HTML training report: loss and validation accuracy per epoch, classes, parameters, device and timing.</source>
        <translation>可选的 HTML 训练报告：每轮的损失和验证精度、类别、参数、设备和耗时。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py"/>
        <source>A model file (.rssgl) written by &apos;Train RSSGL&apos;, with RSSGL or with the spectral model only (RSSGL stage &apos;Never&apos;; then each pixel is classified on its own, without tiles&apos; overlaps).</source>
        <translation>由“训练 RSSGL”生成的模型文件（.rssgl），包含 RSSGL 或仅包含光谱模型（RSSGL 阶段为“从不”；此时每个像元单独分类，图块之间不重叠）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="136"/>
        <source>Optional: only classify inside this mask. A polygon layer (pixels whose centre is inside a polygon) or a raster on the same grid (non-zero pixels). Pixels outside are written as 0 (no data).</source>
        <translation>可选：仅在此掩膜内分类。可以是多边形图层（像元中心位于多边形内的像元）或同网格的栅格（非零像元）。掩膜外的像元写为 0（无数据）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="149"/>
        <source>The classification: GeoTIFF of class values (0 = no data), smallest unsigned integer type, with colour table, class names and a .qml style.</source>
        <translation>分类结果：类别值的 GeoTIFF（0 = 无数据），采用最小的无符号整数类型，带颜色表、类别名称和 .qml 样式。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="152"/>
        <source>Optional: the highest class probability per pixel (0-1, float32); low values show where more samples would help.</source>
        <translation>可选：每个像元的最高类别概率（0-1，float32）；数值低的地方说明补充样本会有帮助。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="154"/>
        <source>Optional: one float32 band per class with its probability (band names are the class names).</source>
        <translation>可选：每个类别一个 float32 概率波段（波段名即类别名）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="158"/>
        <source>The classification raster to assess (class values, 0 = no data), e.g. the output of &apos;Classify with RSSGL&apos;.</source>
        <translation>待评估的分类栅格（类别值，0 = 无数据），例如“使用 RSSGL 分类”的输出。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="160"/>
        <source>Reference samples as polygons or points (reprojected and burnt into the classification&apos;s grid). Use either this or the reference raster.</source>
        <translation>以多边形或点表示的参考样本（重投影并栅格化到分类结果的网格）。此项与参考栅格二选一。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="163"/>
        <source>Field of the reference samples holding the class: the class value, or the class name (matched to the classification&apos;s class names).</source>
        <translation>参考样本中存放类别的字段：类别值，或类别名称（与分类结果的类别名称匹配）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="166"/>
        <source>Reference as a label raster on the classification&apos;s grid: 0 or nodata = not assessed.</source>
        <translation>与分类结果同网格的标签栅格形式的参考数据：0 或无数据表示不参与评估。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="168"/>
        <source>The HTML report (tables of all measures and the confusion matrix).</source>
        <translation>HTML 报告（所有指标的表格和混淆矩阵）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="170"/>
        <source>The same measures as CSV, one value per row (metric, class_value, class_name, mapped_value, value, ci95).</source>
        <translation>以 CSV 输出相同的指标，每行一个值（metric、class_value、class_name、mapped_value、value、ci95）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="172"/>
        <source>Output number: the overall accuracy (0-1).</source>
        <translation>输出数值：总体精度（0-1）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="173"/>
        <source>Output number: Cohen&apos;s kappa.</source>
        <translation>输出数值：Cohen's Kappa 系数。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="125"/>
        <source>Output number: the cross-validated overall accuracy (0-1; empty without cross-validation).</source>
        <translation>输出数值：交叉验证的总体精度（0-1；未进行交叉验证时为空）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="68"/>
        <source>0 (the default): train on every sample pixel and stop when the network fits them no better (nothing held out; the cross-validation estimates the accuracy). Above 0 (up to 0.5): that share of each class&apos;s pixels is held out for choosing the best epoch, which costs accuracy with few samples.</source>
        <translation>0（默认）：在每个样本像元上训练，当网络对它们的拟合不再提高时停止（不留出任何像元；由交叉验证估计精度）。大于 0（最多 0.5）：留出每个类别该比例的像元用于选择最佳轮次，样本很少时会损失精度。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="91"/>
        <source>Early stopping: stop after this many epochs (of 10 iterations) in which the training pixels (or, with a validation share, the validation pixels) were classified no better.</source>
        <translation>提前停止：当训练像元（若设置了验证比例，则为验证像元）在这么多轮（每轮 10 次迭代）内分类没有改善时停止。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="94"/>
        <source>Honest accuracy estimate and model choice (3 by default; 0 = none): with N folds (2-10), the samples (whole polygons; patches of a label raster) are dealt into N groups, N extra models are each trained without one group and tested on it. The same folds decide how the map combines RSSGL with a per-pixel spectral model (an SVM-like kernel classifier); every candidate&apos;s accuracy goes to the log and the report. Training takes N + 1 times as long. The saved model is trained on all samples. Classes with fewer than 2 separate samples are not tested. Without folds, RSSGL and the spectral model are pooled with equal weights. The folds run only where RSSGL is trained (see the RSSGL stage: by default not on a CPU).</source>
        <translation>可靠的精度估计与模型选择（默认 3；0 = 不做）：使用 N 折（2-10）时，样本（整个多边形；标签栅格中的连通斑块）被分成 N 组，另外训练 N 个模型，每个模型不使用其中一组并在该组上测试。同样的折决定地图如何将 RSSGL 与逐像元光谱模型（类似 SVM 的核分类器）组合；每个候选方案的精度写入日志和报告。训练时间为原来的 N + 1 倍。保存的模型使用全部样本训练。少于 2 个独立样本的类别不参与测试。不做交叉验证时，RSSGL 与光谱模型以相同权重组合。只有在训练 RSSGL 时才运行交叉验证（见 RSSGL 阶段：默认在 CPU 上不运行）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="105"/>
        <source>Optional: the bands to train on. Band numbers and ranges (1-based, as QGIS counts bands) keep those bands: &apos;1-129, 136-224&apos;; a leading &apos;drop&apos; leaves them out instead: &apos;drop 130-135&apos;. Ranges ending in &apos;nm&apos; select band centre wavelengths: &apos;400-1340 nm, 1460-1790 nm&apos; (the raster must record its wavelengths). Empty: every band. Bands that the file&apos;s bad-band list (bbl) flags bad, or that hold no data or one constant value, are always left out and named in the log. The model file records the bands it uses, so &apos;Classify with RSSGL&apos; picks them from a raster with all the bands.</source>
        <translation>可选：用于训练的波段。波段编号和范围（从 1 开始，与 QGIS 的波段计数一致）保留这些波段：'1-129, 136-224'；开头的 'drop' 则排除它们：'drop 130-135'。以 'nm' 结尾的范围按波段中心波长选择：'400-1340 nm, 1460-1790 nm'（栅格必须记录其波长）。留空：全部波段。文件坏波段列表（bbl）标记为坏的波段，以及无数据或只有一个常数值的波段，总是被排除并在日志中列出。模型文件记录所用的波段，因此“用 RSSGL 分类”会从包含全部波段的栅格中选取它们。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="114"/>
        <source>Leave out the bands in the water-vapour absorption windows (band centres 1340-1460 nm, 1790-1960 nm and beyond 2450 nm), which are noisy or empty in EnMAP, PRISMA, EMIT and airborne products. Needs the raster&apos;s band wavelengths; combines with the band selection.</source>
        <translation>排除水汽吸收窗口中的波段（波段中心 1340-1460 nm、1790-1960 nm 及 2450 nm 以上），这些波段在 EnMAP、PRISMA、EMIT 和航空数据中噪声大或为空。需要栅格的波段波长；可与波段选择同时使用。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="131"/>
        <source>The hyperspectral raster to classify. It must have the bands the model was trained on; a model trained on some of the bands picks them from a raster with more bands (by wavelength when both record them, within 2 nm, else by band number).</source>
        <translation>要分类的高光谱栅格。它必须包含模型训练所用的波段；用部分波段训练的模型会从波段更多的栅格中选取这些波段（双方都记录波长时按波长匹配，容差 2 nm，否则按波段编号）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="86"/>
        <source>What the network sees at each iteration. Auto: the whole raster when the device&apos;s memory holds it (as the paper trains), else windows of 128 x 128 pixels around the samples, a few per iteration, so a flight line or a whole satellite scene trains on an 8 GB GPU. The report says which input was used.</source>
        <translation>网络在每次迭代中看到的内容。自动：当设备内存容纳得下时使用整幅栅格（与论文的训练方式相同），否则使用样本周围 128 x 128 像素的窗口，每次迭代若干个，因此航带或整幅卫星影像也能在 8 GB 的 GPU 上训练。报告会说明使用了哪种输入。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="139"/>
        <source>RSSGL normalises with statistics of the whole scene. A raster larger than one tile is classified tile by tile; with this option the statistics are first gathered over the tiles (3 extra passes; on large rasters each pass looks at a quarter of the tiles), so the map has no tile seams. On the CPU, a raster whose layer maps fit the memory setting (up to about 1500 x 1500 pixels with 2 GiB) is instead computed layer by layer over the whole raster: exactly the whole-scene map, without extra passes. Untick it for a quicker preview (each tile normalised on its own).</source>
        <translation>RSSGL 使用整个场景的统计量进行归一化。大于一个图块的栅格逐块分类；启用此选项时，先在各图块上收集统计量（额外 3 遍；大型栅格每遍只查看四分之一的图块），因此地图没有图块接缝。在 CPU 上，若栅格的各层特征图能放入内存设置（2 GiB 时约可达 1500 x 1500 像素），则改为在整个栅格上逐层计算：结果与整景预测完全相同，无需额外遍历。取消勾选可得到更快的预览（每个图块各自归一化）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="21"/>
        <source>Trains an RSSGL network (a 3D ConvLSTM with attention and a statistical loss, Wang et al. 2022) on a hyperspectral raster from a few labelled pixels. The whole scene is given to the network at once, so it learns spatial context as well as spectra; a raster too large for the device&apos;s memory is trained on windows around the samples instead. Training samples are either a vector layer (polygons or points) with a class field, or a label raster on the same grid. Every sample pixel trains the final model; a cross-validation over whole samples estimates the map&apos;s accuracy and chooses how RSSGL is combined with a per-pixel spectral model. The model file (.rssgl) keeps the class names and colours and the band statistics, and can classify other rasters with &apos;Classify with RSSGL&apos;. Bands that the file&apos;s bad-band list flags bad, or that hold no data, are left out and named in the log; the band selection and the water-vapour option leave out more. A GPU makes training much faster; on a CPU it works but is slow.</source>
        <translation>在少量已标注像元上，针对高光谱栅格训练 RSSGL 网络（带注意力机制和统计损失的 3D ConvLSTM，Wang 等，2022）。网络一次看到整个场景，因此既学习光谱也学习空间上下文；若栅格太大、设备内存容纳不下，则改为在样本周围的窗口上训练。训练样本可以是带类别字段的矢量图层（面或点），也可以是同一网格上的标签栅格。所有样本像元都用于训练最终模型；按整个样本进行的交叉验证估计地图精度，并选择 RSSGL 与逐像元光谱模型的组合方式。模型文件（.rssgl）保存类别名称、颜色和波段统计量，可用“用 RSSGL 分类”对其他栅格分类。文件坏波段列表标记为坏的波段或无数据的波段会被排除并在日志中列出；波段选择和水汽选项可排除更多波段。GPU 可大大加快训练；在 CPU 上也能运行，但较慢。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="33"/>
        <source>Classifies a hyperspectral raster with a model trained by &apos;Train RSSGL&apos;. The raster must have the bands the model was trained on (by wavelength when both know them, else by band number); a model trained on a band subset classifies the full-band raster. The raster is processed in overlapping tiles with bounded memory, so large scenes work too. The result is a GeoTIFF of class values (0 = no data) with the class names and colours inside and a .qml style beside it; it loads as a paletted layer.</source>
        <translation>使用“训练 RSSGL”训练的模型对高光谱栅格分类。栅格必须包含模型训练所用的波段（双方都知道波长时按波长匹配，否则按波段编号）；用部分波段训练的模型可对全波段栅格分类。栅格以重叠图块、在有限内存中处理，因此大场景也能处理。结果是一个类别值 GeoTIFF（0 = 无数据），内含类别名称和颜色，旁边附有 .qml 样式；它以调色板图层加载。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/help.py" line="40"/>
        <source>Compares a classification raster with reference samples (a vector layer with a class field, or a label raster) and writes an HTML and a CSV report: overall accuracy, average accuracy and kappa with 95 % confidence intervals, producer&apos;s and user&apos;s accuracy and F1 per class, the confusion matrix, the mapped area of each class in map units and the area-adjusted accuracy and areas of Olofsson et al. (2014). Classes are matched by value; a text reference field is matched to the class names of the classification. Use reference samples that were NOT used for training.</source>
        <translation>将分类栅格与参考样本（带类别字段的矢量图层或标签栅格）比较，并写出 HTML 和 CSV 报告：总体精度、平均精度和 kappa 及其 95 % 置信区间，每类的生产者精度、用户精度和 F1，混淆矩阵，每类在地图单位下的制图面积，以及 Olofsson 等（2014）的面积校正精度和面积。类别按值匹配；文本参考字段与分类结果的类别名称匹配。请使用未参与训练的参考样本。</translation>
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
        <translation>RSSGL 高光谱深度学习分类</translation>
    </message>
</context>
<context>
    <name>RssglResults</name>
    <message>
        <location filename="../rssgl_qgis/gui/results.py" line="37"/>
        <source>QGIS could not open the classification {0}.</source>
        <translation>QGIS 无法打开分类结果 {0}。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/results.py" line="52"/>
        <source>QGIS could not open the confidence raster {0}.</source>
        <translation>QGIS 无法打开置信度栅格 {0}。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/results.py" line="65"/>
        <source>QGIS could not open the guidance layer {0}.</source>
        <translation>QGIS 无法打开引导图层 {0}。</translation>
    </message>
</context>
<context>
    <name>RssglTrainTask</name>
    <message>
        <location filename="../rssgl_qgis/gui/tasks.py" line="92"/>
        <source>Fine-tuning reached its best model after {0} epoch(s) / {1:.1f} s; the last full training needed {2} epoch(s) / {3:.1f} s: {4:.1f}x faster (whole runs {5:.1f} s vs {6:.1f} s).</source>
        <translation>微调在 {0} 轮 / {1:.1f} 秒后达到最佳模型；上一次完整训练需要 {2} 轮 / {3:.1f} 秒：快 {4:.1f} 倍（完整运行 {5:.1f} 秒对比 {6:.1f} 秒）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/tasks.py" line="159"/>
        <source>Fine-tuning from {0}.</source>
        <translation>从 {0} 开始微调。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/tasks.py" line="191"/>
        <source>Classifying the whole raster.</source>
        <translation>正在对整个栅格进行分类。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/tasks.py" line="209"/>
        <source>Draw next #{0}: {1} vs {2} (mean confidence {3:.2f}, {4} px).</source>
        <translation>下一步绘制 #{0}：{1} 与 {2}（平均置信度 {3:.2f}，{4} 像元）。</translation>
    </message>
</context>
<context>
    <name>TorchInstaller</name>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="118"/>
        <source>NVIDIA driver with CUDA {0}.{1} found: installing the CUDA build.</source>
        <translation>检测到支持 CUDA {0}.{1} 的 NVIDIA 驱动：将安装 CUDA 版本。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="125"/>
        <source>No NVIDIA GPU found: installing the CPU build.</source>
        <translation>未检测到 NVIDIA GPU：将安装 CPU 版本。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="123"/>
        <source>NVIDIA driver found, but its CUDA {0}.{1} is older than the CUDA builds of PyTorch need (12.6); installing the CPU build. Update the NVIDIA driver to train on the GPU.</source>
        <translation>检测到 NVIDIA 驱动，但其 CUDA {0}.{1} 低于 PyTorch CUDA 版本的要求（12.6）；将安装 CPU 版本。如需在 GPU 上训练，请更新 NVIDIA 驱动。</translation>
    </message>
    <message>
        <source>This NVIDIA GPU (compute capability {0}.{1}) needs a driver with CUDA 12.8 or newer, but the driver reports CUDA {2}.{3}; installing the CPU build. Update the NVIDIA driver to train on the GPU.</source>
        <translation>此 NVIDIA GPU（计算能力 {0}.{1}）需要支持 CUDA 12.8 或更高版本的驱动，但驱动报告的是 CUDA {2}.{3}；将安装 CPU 版本。请更新 NVIDIA 驱动以在 GPU 上训练。</translation>
    </message>
    <message>
        <source>Linux on ARM: installing the CPU build.</source>
        <translation>ARM 上的 Linux：将安装 CPU 版本。</translation>
    </message>
    <message>
        <source>Apple Silicon Mac: installing the standard build, which can train on the Apple GPU (MPS).</source>
        <translation>Apple Silicon Mac：将安装标准版本，可在 Apple GPU（MPS）上训练。</translation>
    </message>
    <message>
        <source>macOS {0}.{1}: PyTorch 2.12 and newer need macOS 14, so the last PyTorch for your macOS (2.11) is installed. Update macOS to get current versions.</source>
        <translation>macOS {0}.{1}：PyTorch 2.12 及更新版本需要 macOS 14，因此将安装适用于您的 macOS 的最后一个 PyTorch 版本（2.11）。请更新 macOS 以获得最新版本。</translation>
    </message>
    <message>
        <source>Intel Mac: PyTorch stopped publishing builds for Intel Macs after version 2.2; installing PyTorch 2.2, which trains on the CPU.</source>
        <translation>Intel Mac：PyTorch 在 2.2 版之后不再发布 Intel Mac 版本；将安装 PyTorch 2.2，在 CPU 上训练。</translation>
    </message>
    <message>
        <source>Intel Mac with Python {0}.{1}: the last PyTorch for Intel Macs (2.2) exists only for Python 3.8 to 3.12, so it cannot be installed into this QGIS. Train on a Windows or Linux computer, or use a QGIS whose Python is 3.12 or older.</source>
        <translation>使用 Python {0}.{1} 的 Intel Mac：适用于 Intel Mac 的最后一个 PyTorch（2.2）仅支持 Python 3.8 至 3.12，因此无法安装到此 QGIS 中。请在 Windows 或 Linux 计算机上训练，或使用 Python 为 3.12 或更早版本的 QGIS。</translation>
    </message>
    <message>
        <source>Intel Mac: the last PyTorch for Intel Macs (2.2) was built for NumPy 1.x and cannot exchange data with the NumPy {0}.{1} of this QGIS. Train on a Windows or Linux computer, or on an Apple Silicon Mac.</source>
        <translation>Intel Mac：适用于 Intel Mac 的最后一个 PyTorch（2.2）是为 NumPy 1.x 构建的，无法与此 QGIS 的 NumPy {0}.{1} 交换数据。请在 Windows 或 Linux 计算机上，或在 Apple Silicon Mac 上训练。</translation>
    </message>
    <message>
        <source>This QGIS is the Intel (x86-64) build running under Rosetta on an Apple Silicon Mac. PyTorch has no current build for it and cannot use the Apple GPU from it: install the Apple Silicon (arm64) build of QGIS from qgis.org, then install PyTorch again.</source>
        <translation>此 QGIS 是在 Apple Silicon Mac 上通过 Rosetta 运行的 Intel（x86-64）版本。PyTorch 没有适用于它的当前版本，也无法从中使用 Apple GPU：请从 qgis.org 安装 QGIS 的 Apple Silicon（arm64）版本，然后重新安装 PyTorch。</translation>
    </message>
    <message>
        <source>PyTorch publishes no build for {0} on {1}. Train on a Windows, Linux or macOS computer with an x86-64 or ARM processor.</source>
        <translation>PyTorch 没有发布适用于 {1} 上 {0} 的版本。请在配备 x86-64 或 ARM 处理器的 Windows、Linux 或 macOS 计算机上训练。</translation>
    </message>
    <message>
        <source>PyTorch is installed but Windows cannot load its libraries (WinError 1114 / c10.dll): the Microsoft Visual C++ Redistributable is missing or too old. Install it from {0}, then restart QGIS.</source>
        <translation>PyTorch 已安装，但 Windows 无法加载其库（WinError 1114 / c10.dll）：缺少 Microsoft Visual C++ 可再发行组件或其版本过旧。请从 {0} 安装，然后重启 QGIS。</translation>
    </message>
    <message>
        <source>QGIS runs as {0}, which is not a Python interpreter, and no python.exe or python3 was found beside it. Open the OSGeo4W Shell (Windows Start menu) or a terminal and run the manual command there with &apos;python&apos; in place of the program name.</source>
        <translation>QGIS 以 {0} 运行，它不是 Python 解释器，且其旁边未找到 python.exe 或 python3。请打开 OSGeo4W Shell（Windows 开始菜单）或终端，在其中运行手动命令，并用 &apos;python&apos; 代替程序名。</translation>
    </message>
    <message>
        <source>The folder {0} is in use (QGIS has loaded PyTorch from it). Restart QGIS, then try again.</source>
        <translation>文件夹 {0} 正在使用中（QGIS 已从中加载 PyTorch）。请重启 QGIS 后再试。</translation>
    </message>
    <message>
        <source>The Python of this QGIS has no pip. Run &apos;{0} -m ensurepip --upgrade&apos; in a terminal (on macOS this may need administrator rights), then install again.</source>
        <translation>此 QGIS 的 Python 没有 pip。请在终端中运行 &apos;{0} -m ensurepip --upgrade&apos;（在 macOS 上可能需要管理员权限），然后重新安装。</translation>
    </message>
    <message>
        <source>pip would have to replace the NumPy that QGIS uses; the installer never does that, because QGIS&apos;s own modules are built against it. Update QGIS, or install a PyTorch version that works with this NumPy (docs/INSTALL.md).</source>
        <translation>pip 将不得不替换 QGIS 使用的 NumPy；安装程序绝不会这样做，因为 QGIS 自身的模块是基于它构建的。请更新 QGIS，或安装与此 NumPy 兼容的 PyTorch 版本（docs/INSTALL.md）。</translation>
    </message>
    <message>
        <source>The folder {0} cannot be written (for example because it lies under Program Files). Set the environment variable RSSGL_DEPS_DIR to a folder you may write to (QGIS: Settings &gt; Options &gt; System &gt; Environment), restart QGIS and install again.</source>
        <translation>无法写入文件夹 {0}（例如因为它位于 Program Files 下）。请将环境变量 RSSGL_DEPS_DIR 设置为您有写入权限的文件夹（QGIS：设置 &gt; 选项 &gt; 系统 &gt; 环境），重启 QGIS 后重新安装。</translation>
    </message>
    <message>
        <source>The secure connection to the package index was refused (certificate check failed): a company proxy or an antivirus probably inspects HTTPS. Ask your IT for its root certificate and set the environment variable PIP_CERT to that file (QGIS: Settings &gt; Options &gt; System &gt; Environment), then install again. As a last resort add &apos;--trusted-host pypi.org --trusted-host files.pythonhosted.org --trusted-host download.pytorch.org&apos; to the manual command.</source>
        <translation>到软件包索引的安全连接被拒绝（证书校验失败）：可能是公司代理或杀毒软件在检查 HTTPS。请向 IT 部门索取其根证书，并将环境变量 PIP_CERT 设置为该文件（QGIS：设置 &gt; 选项 &gt; 系统 &gt; 环境），然后重新安装。万不得已时，可在手动命令中加入 &apos;--trusted-host pypi.org --trusted-host files.pythonhosted.org --trusted-host download.pytorch.org&apos;。</translation>
    </message>
    <message>
        <source>The connection through the proxy failed. Enter the proxy under QGIS: Settings &gt; Options &gt; Network (the installer hands it to pip), or set HTTPS_PROXY=http://user:password@proxy:port under Settings &gt; Options &gt; System &gt; Environment, then install again.</source>
        <translation>通过代理的连接失败。请在 QGIS：设置 &gt; 选项 &gt; 网络 中填写代理（安装程序会将其传给 pip），或在 设置 &gt; 选项 &gt; 系统 &gt; 环境 中设置 HTTPS_PROXY=http://user:password@proxy:port，然后重新安装。</translation>
    </message>
    <message>
        <source>The package index could not be reached (no connection, or a proxy is needed). Check the connection and the proxy under QGIS: Settings &gt; Options &gt; Network, or download the wheels on a connected computer and use &apos;Install from a folder...&apos; (docs/INSTALL.md).</source>
        <translation>无法访问软件包索引（没有网络连接，或需要代理）。请检查网络连接以及 QGIS：设置 &gt; 选项 &gt; 网络 中的代理，或在联网的计算机上下载 wheel 文件并使用“从文件夹安装...”（docs/INSTALL.md）。</translation>
    </message>
    <message>
        <source>The installed PyTorch&apos;s CUDA build does not fit this NVIDIA driver or GPU. Update the NVIDIA driver, then install PyTorch again: the installer picks the build the driver supports (a GeForce RTX 50 / Blackwell GPU needs a driver with CUDA 12.8 or newer).</source>
        <translation>已安装的 PyTorch 的 CUDA 版本与此 NVIDIA 驱动或 GPU 不匹配。请更新 NVIDIA 驱动，然后重新安装 PyTorch：安装程序会选择驱动支持的版本（GeForce RTX 50 / Blackwell GPU 需要支持 CUDA 12.8 或更高版本的驱动）。</translation>
    </message>
    <message>
        <source>The package index has no PyTorch for the Python {0} of this QGIS on this platform (old macOS QGIS packages ship a Python that current PyTorch no longer supports). Install a current QGIS (on an Apple Silicon Mac its Apple Silicon build) and install PyTorch again.</source>
        <translation>软件包索引中没有适用于此平台上此 QGIS 的 Python {0} 的 PyTorch（旧版 macOS QGIS 安装包自带的 Python 已不受当前 PyTorch 支持）。请安装当前版本的 QGIS（在 Apple Silicon Mac 上安装其 Apple Silicon 版本），然后重新安装 PyTorch。</translation>
    </message>
    <message>
        <source>The disk is full: PyTorch needs about 1 GB (the CUDA build up to 5 GB). Free space and install again.</source>
        <translation>磁盘已满：PyTorch 需要约 1 GB（CUDA 版本最多 5 GB）。请释放空间后重新安装。</translation>
    </message>
</context>
<context>
    <name>TorchInstallerDialog</name>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="139"/>
        <source>Install PyTorch for RSSGL</source>
        <translation>为 RSSGL 安装 PyTorch</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="143"/>
        <source>{0}

RSSGL trains a deep network with PyTorch. It can be installed into a folder that belongs to this plugin ({1}); your system Python and other plugins are not changed. {2}
The download is large (about 200 MB for the CPU build, several GB for the CUDA build). Restart QGIS afterwards if PyTorch was already loaded.</source>
        <translation>{0}

RSSGL 使用 PyTorch 训练深度网络。PyTorch 可以安装到本插件专用的文件夹（{1}）中，不会改动系统 Python 和其他插件。{2}
下载量较大（CPU 版本约 200 MB，CUDA 版本数 GB）。如果 PyTorch 之前已被加载，安装后请重启 QGIS。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="156"/>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="168"/>
        <source>Install</source>
        <translation>安装</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="175"/>
        <source>Manual installation (run in a terminal):</source>
        <translation>手动安装（在终端中运行）：</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="211"/>
        <source>Could not start {0}. Run the manual command above in a terminal instead.</source>
        <translation>无法启动 {0}。请改为在终端中运行上面的手动命令。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="223"/>
        <source>PyTorch was installed into {0}.</source>
        <translation>PyTorch 已安装到 {0}。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/installer.py" line="225"/>
        <source>pip failed (exit code {0}). Read the log above, or run the manual command.</source>
        <translation>pip 执行失败（退出码 {0}）。请查看上方日志，或运行手动命令。</translation>
    </message>
    <message>
        <source>Install from a folder...</source>
        <translation>从文件夹安装...</translation>
    </message>
    <message>
        <source>Remove installed PyTorch</source>
        <translation>移除已安装的 PyTorch</translation>
    </message>
    <message>
        <source>Folder with the PyTorch wheels</source>
        <translation>包含 PyTorch wheel 文件的文件夹</translation>
    </message>
    <message>
        <source>Installation canceled; nothing was changed.</source>
        <translation>安装已取消；未做任何更改。</translation>
    </message>
    <message>
        <source>Delete {0} and everything the installer put there? QGIS&apos;s own Python is not touched.</source>
        <translation>删除 {0} 以及安装程序放在其中的所有内容？QGIS 自身的 Python 不受影响。</translation>
    </message>
    <message>
        <source>Removed {0}. Restart QGIS if PyTorch was loaded from there.</source>
        <translation>已移除 {0}。如果 PyTorch 是从那里加载的，请重启 QGIS。</translation>
    </message>
</context>
<context>
    <name>TorchStatus</name>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="42"/>
        <source>PyTorch is not installed: training is not possible yet.</source>
        <translation>未安装 PyTorch：暂时无法训练。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="47"/>
        <source>PyTorch {0} is too old (RSSGL needs {1} or newer).</source>
        <translation>PyTorch {0} 版本过旧（RSSGL 需要 {1} 或更新版本）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="51"/>
        <source>PyTorch is installed but fails to load: {0}</source>
        <translation>PyTorch 已安装但无法加载：{0}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="54"/>
        <source>PyTorch {0} | {1}</source>
        <translation>PyTorch {0} | {1}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="73"/>
        <source>CUDA: {0}, {1:.0f} GiB</source>
        <translation>CUDA：{0}，{1:.0f} GiB</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="79"/>
        <source>CPU only: training will be slow (CUDA failed: {0})</source>
        <translation>仅 CPU：训练会很慢（CUDA 失败：{0}）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/status.py" line="83"/>
        <source>CPU only: training will be slow</source>
        <translation>仅 CPU：训练会很慢</translation>
    </message>
    <message>
        <source>Apple GPU (MPS)</source>
        <translation>Apple GPU（MPS）</translation>
    </message>
</context>
<context>
    <name>TrainRssglAlgorithm</name>
    <message>
        <location filename="../rssgl_qgis/processing/train.py"/>
        <source>RSSGL stage</source>
        <translation>RSSGL 阶段</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py"/>
        <source>Automatic: on a GPU only (else the spectral model&apos;s map in seconds)</source>
        <translation>自动：仅在 GPU 上（否则数秒内给出光谱模型的分类图）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py"/>
        <source>Always (minutes on a CPU)</source>
        <translation>始终（在 CPU 上需数分钟）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py"/>
        <source>Never: spectral model only</source>
        <translation>从不：仅光谱模型</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="63"/>
        <source>Train RSSGL</source>
        <translation>训练 RSSGL</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="158"/>
        <source>Hyperspectral raster</source>
        <translation>高光谱栅格</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="68"/>
        <source>Training samples (polygons or points)</source>
        <translation>训练样本（多边形或点）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="71"/>
        <source>Class field</source>
        <translation>类别字段</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="160"/>
        <source>Training samples as a label raster</source>
        <translation>以标签栅格作为训练样本</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="81"/>
        <source>Iterations</source>
        <translation>迭代次数</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="84"/>
        <source>Learning rate</source>
        <translation>学习率</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="89"/>
        <source>ConvLSTM kernel</source>
        <translation>ConvLSTM 卷积核</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="89"/>
        <source>Auto (from the raster size)</source>
        <translation>自动（根据栅格大小）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="92"/>
        <source>Statistical-loss weight</source>
        <translation>统计损失权重</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="95"/>
        <source>Random seed</source>
        <translation>随机种子</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="98"/>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="98"/>
        <source>Auto (GPU when available)</source>
        <translation>自动（如有 GPU 则使用）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="107"/>
        <source>Early-stopping patience (epochs)</source>
        <translation>提前停止耐心值（轮）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="119"/>
        <source>Model file</source>
        <translation>模型文件</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="119"/>
        <source>RSSGL model (*.rssgl)</source>
        <translation>RSSGL 模型 (*.rssgl)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="121"/>
        <source>Classification of the training raster</source>
        <translation>训练栅格的分类结果</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="124"/>
        <source>Confidence</source>
        <translation>置信度</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="126"/>
        <source>Training report</source>
        <translation>训练报告</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="126"/>
        <source>HTML files (*.html)</source>
        <translation>HTML 文件 (*.html)</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="137"/>
        <source>Give the training samples either as a vector layer (&apos;Training samples&apos;) or as a label raster (&apos;Training samples as a label raster&apos;), not both or neither.</source>
        <translation>请以矢量图层（“训练样本”）或标签栅格（“以标签栅格作为训练样本”）二者之一提供训练样本，不能两者都给或都不给。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="140"/>
        <source>Choose the &apos;Class field&apos; of the training samples.</source>
        <translation>请为训练样本选择“类别字段”。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="154"/>
        <source>The RSSGL engine could not be loaded ({}). Install PyTorch for the Python that QGIS uses (the RSSGL dock offers to do it).</source>
        <translation>无法加载 RSSGL 引擎（{}）。请为 QGIS 所用的 Python 安装 PyTorch（RSSGL 停靠面板可代为安装）。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="198"/>
        <source>Validation overall accuracy of the kept model: {:.2f} %</source>
        <translation>所保留模型的验证总体精度：{:.2f} %</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="207"/>
        <source>RSSGL classification</source>
        <translation>RSSGL 分类</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="209"/>
        <source>RSSGL confidence</source>
        <translation>RSSGL 置信度</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="110"/>
        <source>Cross-validation folds over whole samples (0 = none)</source>
        <translation>按完整样本划分的交叉验证折数（0 = 不进行）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="143"/>
        <source>Cross-validation needs at least 2 folds; choose 0 for none, or 2 to {}.</source>
        <translation>交叉验证至少需要 2 折；请选择 0（不进行）或 2 到 {}。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="152"/>
        <source>The model file &apos;{}&apos; must end in .rssgl, the extension &apos;Classify with RSSGL&apos; reads; choose a name such as &apos;{}.rssgl&apos;.</source>
        <translation>模型文件“{}”必须以 .rssgl 结尾，这是“使用 RSSGL 分类”读取的扩展名；请选择类似“{}.rssgl”的名称。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="204"/>
        <source>Cross-validated overall accuracy ({} folds of whole samples): {:.2f} % (+- {:.2f})</source>
        <translation>交叉验证总体精度（{} 折，按完整样本）：{:.2f} %（+- {:.2f}）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="129"/>
        <source>Cross-validated overall accuracy</source>
        <translation>交叉验证总体精度</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="76"/>
        <source>Validation share (0 = train on every sample pixel)</source>
        <translation>验证比例（0 = 在每个样本像元上训练）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="113"/>
        <source>Band selection (e.g. &apos;1-129, 136-224&apos;, &apos;drop 130-135&apos;, &apos;400-1340 nm&apos;; empty = all)</source>
        <translation>波段选择（例如 '1-129, 136-224'、'drop 130-135'、'400-1340 nm'；留空 = 全部）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="116"/>
        <source>Drop the water-vapour bands (1340-1460 nm, 1790-1960 nm, beyond 2450 nm)</source>
        <translation>排除水汽吸收波段（1340-1460 nm、1790-1960 nm、2450 nm 以上）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="101"/>
        <source>Training input</source>
        <translation>训练输入</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="101"/>
        <source>Auto (the whole raster when it fits the device&apos;s memory, else windows)</source>
        <translation>自动（设备内存容纳得下时用整幅栅格，否则用窗口）</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="101"/>
        <source>The whole raster at every iteration</source>
        <translation>每次迭代使用整幅栅格</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/processing/train.py" line="101"/>
        <source>Windows around the samples (memory independent of the raster size)</source>
        <translation>样本周围的窗口（内存与栅格大小无关）</translation>
    </message>
</context>
<context>
    <name>TrainingLayer</name>
    <message>
        <location filename="../rssgl_qgis/gui/training_layer.py" line="82"/>
        <source>The file {0} exists already; choose another name so it is not overwritten.</source>
        <translation>文件 {0} 已存在；请换一个名称，以免将其覆盖。</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/training_layer.py" line="99"/>
        <source>Could not create {0}: {1}</source>
        <translation>无法创建 {0}：{1}</translation>
    </message>
    <message>
        <location filename="../rssgl_qgis/gui/training_layer.py" line="105"/>
        <source>The new training layer {0} could not be opened.</source>
        <translation>无法打开新的训练图层 {0}。</translation>
    </message>
</context>
</TS>
