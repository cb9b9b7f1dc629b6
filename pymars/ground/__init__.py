"""The ground side of the codec: pymars files back to images, without PyTorch.

* :mod:`pymars.ground.decode`: header, bundle, entropy decoding in the C++ core (the rover's own code), report;
* :mod:`pymars.ground.synthesis`: synthesis backends for learned tiles (ONNX Runtime; plug-ins by entry point);
* :mod:`pymars.ground.assemble`: a decoded tile -> the file's channels and bit depth.
"""
