"""samedenhancer's napari plugin (``pip install "samedenhancer[napari]"``): refine, correct,
propagate and review masks on napari layers.

The widgets (declared in ``napari.yaml``, napari's npe2 manifest) use the public API only:

- :mod:`.refine`: an Image and a Labels layer -> a "refined" Labels layer (:class:`~samedenhancer.Enhancer`);
- :mod:`.clicks`: clicks of a Points layer correct one label of a Labels layer
  (:class:`~samedenhancer.InteractiveSession`), with undo;
- :mod:`.propagate`: the labelled slices of a stack -> the structures through the volume
  (:func:`~samedenhancer.propagate`);
- :mod:`.review`: a folder of images and coarse masks reviewed as ``samedenhancer annotate`` does,
  with the same outputs and ``annotations.csv``;
- :mod:`.sample`: the shipped fundus sample in File > Open Sample.

Around them, :mod:`.engine` keeps one engine per model and each image's embedding (encoded once,
whichever widget asks), :mod:`.jobs` runs the model in napari's worker threads with a progress bar
and a cancel button, and :mod:`.layers` turns layers into arrays, refusing what does not fit with a
message. Nothing here imports napari until a widget is made.
"""
