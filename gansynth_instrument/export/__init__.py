"""export/: Magenta GANSynth checkpoints → one self-describing ONNX instrument model.

    read_checkpoint(path) -> Checkpoint         checkpoint.py: model/stage dir or zip, EMA weights
    build_generator(weights, config, progress)  graph.py: onnx.ModelProto, weights by Magenta name
    export_model(checkpoint, output)            onnx_model.py: build + metadata, atomic write
    magenta_progress, SET_FLAGS_DEFAULTS, ...   hparams.py: Magenta's flags and what they imply
    TensorBundle(prefix)                        bundle.py: TF V2 checkpoint reader, no TensorFlow

No TensorFlow is imported anywhere. Of the instrument it imports only the top-level helpers and
``model/`` (the ONNX contract it writes); only the instrument's ``training/`` and ``commands/``
import it (``tests/test_layout.py`` checks both).
"""
